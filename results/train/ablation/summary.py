import json,sys
for f in sys.argv[1:]:
    print('==',f)
    for l in open(f):
        if not l.startswith('{'): 
            if 'Error' in l or 'error' in l: print(l.strip()[:300])
            continue
        d=json.loads(l)
        if 'cells' in d:
            print(' eval',d['step'],' '.join('%s%d:%d/%d'%(c['task'][5:8]+c['task'][-1],c['context_length'],round(c['accuracy']),round(c['token_accuracy'])) for c in d['cells']))
        elif d['step']%500==0: print(' ',d['step'],round(d['answer_loss'],3),round(d['seconds']))
