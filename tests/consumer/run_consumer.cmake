# SPDX-License-Identifier: Apache-2.0
# Builds and runs a ten-line downstream project. MODE=find_package installs etrm into a
# temporary prefix first; MODE=build_tree finds the package in the build directory;
# MODE=add_subdirectory points the project at the source tree. WITH_CUDA=ON asks for the cuda
# component.
file(REMOVE_RECURSE ${WORK_DIR})
set(args)
if(MODE STREQUAL "find_package")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "install into ${WORK_DIR}/prefix failed")
  endif()
  set(args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "build_tree")
  set(args -Detrm_DIR=${BUILD_DIR})
else()
  set(args -DETRM_SOURCE_DIR=${SOURCE_DIR})
endif()
set(project_dir ${MODE})
if(MODE STREQUAL "build_tree")
  set(project_dir find_package)
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/${project_dir} -B ${WORK_DIR}/build
                        -DCMAKE_BUILD_TYPE=Release -DETRM_WITH_CUDA=${WITH_CUDA} ${args} RESULT_VARIABLE rc)
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
