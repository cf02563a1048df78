# SPDX-License-Identifier: Apache-2.0
# Finds oneDNN (header oneapi/dnnl/dnnl.hpp, library dnnl) and defines the imported target
# etrm::onednn, which links it, defines ETRM_WITH_DNNL=1 for the CPU backend's GEMM provider and,
# for a oneDNN built on OpenMP (Debian's), links the OpenMP runtime so the backend can size
# oneDNN's thread team. Sets ETRM_ONEDNN_FOUND. oneDNN's own CMake package is not used: Debian's
# requires the OpenCL headers even for CPU use.
if(TARGET etrm::onednn)
  set(ETRM_ONEDNN_FOUND TRUE)
  return()
endif()
set(ETRM_ONEDNN_FOUND FALSE)
find_path(ETRM_ONEDNN_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
find_library(ETRM_ONEDNN_LIBRARY NAMES dnnl)
if(NOT ETRM_ONEDNN_INCLUDE_DIR OR NOT ETRM_ONEDNN_LIBRARY)
  return()
endif()
set(_etrm_onednn_libs ${ETRM_ONEDNN_LIBRARY})
file(STRINGS ${ETRM_ONEDNN_INCLUDE_DIR}/oneapi/dnnl/dnnl_config.h _etrm_onednn_omp
     REGEX "define DNNL_CPU_THREADING_RUNTIME DNNL_RUNTIME_OMP")
if(_etrm_onednn_omp)
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(NOT OpenMP_CXX_FOUND)
    return()
  endif()
  list(APPEND _etrm_onednn_libs ${OpenMP_CXX_LIBRARIES})  # the runtime only: no -fopenmp for users
endif()
add_library(etrm::onednn INTERFACE IMPORTED)
set_target_properties(etrm::onednn PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${ETRM_ONEDNN_INCLUDE_DIR}
                                              INTERFACE_LINK_LIBRARIES "${_etrm_onednn_libs}"
                                              INTERFACE_COMPILE_DEFINITIONS ETRM_WITH_DNNL=1)
set(ETRM_ONEDNN_FOUND TRUE)
