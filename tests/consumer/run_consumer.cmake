# SPDX-License-Identifier: Apache-2.0
# Builds and runs a ten-line downstream project. MODE=find_package installs etrm into a
# temporary prefix first; MODE=add_subdirectory points the project at the source tree.
file(REMOVE_RECURSE ${WORK_DIR})
set(args)
if(MODE STREQUAL "find_package")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "install into ${WORK_DIR}/prefix failed")
  endif()
  set(args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(args -DETRM_SOURCE_DIR=${SOURCE_DIR})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/${MODE} -B ${WORK_DIR}/build
                        -DCMAKE_BUILD_TYPE=Release ${args} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the ${MODE} consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the ${MODE} consumer failed")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the ${MODE} consumer exited with ${rc}")
endif()
