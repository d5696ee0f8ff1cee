# Driven by CTest (see tests/CMakeLists.txt): install, build the plugin out of tree,
# then list and run it with the installed attnbench.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run_step("configure out-of-tree plugin" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/out-of-tree-plugin
  -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
run_step("build out-of-tree plugin" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)

set(exe ${prefix}/bin/attnbench)
run_step("attnbench list" ${exe} --plugin-path ${WORK_DIR}/build list)
if(NOT step_output MATCHES "recent_window +policy +0\\.1\\.0")
  message(FATAL_ERROR "attnbench list does not show the out-of-tree plugin:\n${step_output}")
endif()
if(NOT step_output MATCHES "dense +policy")
  message(FATAL_ERROR "the installed attnbench does not find its own dense plugin:\n${step_output}")
endif()

run_step("attnbench run" ${exe} --plugin-path ${WORK_DIR}/build run
  ${SOURCE_DIR}/tests/out-of-tree-plugin/config.json --out ${WORK_DIR}/run)
file(READ ${WORK_DIR}/run/results.json results)
string(JSON n_cells LENGTH "${results}" cells)
if(NOT n_cells EQUAL 2)
  message(FATAL_ERROR "expected 2 cells in results.json, got ${n_cells}")
endif()
string(JSON policy GET "${results}" cells 1 policy)
string(JSON visited GET "${results}" cells 1 metrics tokens_attended_frac)
if(NOT policy STREQUAL "recent_window")
  message(FATAL_ERROR "second cell is ${policy}, expected recent_window")
endif()
if(NOT visited LESS 0.5)
  message(FATAL_ERROR "recent_window attended ${visited} of the context; its plan was not used")
endif()
message(STATUS "out-of-tree plugin built, listed and run (tokens attended ${visited})")
