class Broken:
    def plan(self, request)
        return None
