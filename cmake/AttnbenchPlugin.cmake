# attnbench_add_plugin(NAME SOURCES src...)
#
# Builds one attnbench plugin (a policy or a terminator) as a MODULE library named
# attnbench-plugin-NAME.so, the file name the loader looks for. Symbols are hidden
# except the entry point (marked ATTNBENCH_PLUGIN_EXPORT in the source), so plugins never
# interpose on each other or on the host. Works in the attnbench tree and, after
# find_package(attnbench), in any other project.
function(attnbench_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "attnbench_add_plugin(${name}): SOURCES is required")
  endif()
  set(target attnbench-plugin-${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE attnbench::plugin_api attnbench::kernels)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED ATTNBENCH_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ATTNBENCH_PLUGIN_OUTPUT_DIR}")
  endif()
  if(DEFINED ATTNBENCH_PLUGIN_INSTALL_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION "${ATTNBENCH_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
