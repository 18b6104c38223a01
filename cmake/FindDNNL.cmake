# oneDNN, CPU engine only: defines the imported target DNNL::dnnl (header + libdnnl).
#
# Why not Debian's dnnl-config.cmake: it was built with the OpenCL GPU runtime, so it calls
# find_package(OpenCL REQUIRED) and makes every consumer link OpenCL::OpenCL, which needs
# ocl-icd-opencl-dev (only *recommended* by libdnnl-dev). Lamina uses the CPU engine alone, and
# libdnnl.so.2 already carries its own runtime dependency on libOpenCL.so.1 (a hard dependency of
# the libdnnl2 package), so neither Lamina nor its users need the OpenCL headers to build.
# A user's oneDNN elsewhere: -DDNNL_ROOT=/opt/dnnl (CMake's <Package>_ROOT search).
find_path(DNNL_INCLUDE_DIR NAMES dnnl.hpp oneapi/dnnl/dnnl.hpp)
find_library(DNNL_LIBRARY NAMES dnnl)

set(DNNL_VERSION "")
foreach(header "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h" "${DNNL_INCLUDE_DIR}/dnnl_version.h")
  if(DNNL_INCLUDE_DIR AND EXISTS "${header}" AND NOT DNNL_VERSION)
    file(STRINGS "${header}" _dnnl_defs REGEX "#define DNNL_VERSION_(MAJOR|MINOR|PATCH) ")
    foreach(part MAJOR MINOR PATCH)
      string(REGEX MATCH "DNNL_VERSION_${part} +([0-9]+)" _ "${_dnnl_defs}")
      set(_dnnl_${part} "${CMAKE_MATCH_1}")
    endforeach()
    if(NOT _dnnl_MAJOR STREQUAL "")
      set(DNNL_VERSION "${_dnnl_MAJOR}.${_dnnl_MINOR}.${_dnnl_PATCH}")
    endif()
  endif()
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(DNNL
  REQUIRED_VARS DNNL_LIBRARY DNNL_INCLUDE_DIR
  VERSION_VAR DNNL_VERSION
  REASON_FAILURE_MESSAGE "install Debian's libdnnl-dev (scripts/setup.sh does), or set DNNL_ROOT")

if(DNNL_FOUND AND NOT TARGET DNNL::dnnl)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES
    IMPORTED_LOCATION "${DNNL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${DNNL_INCLUDE_DIR}")
endif()
mark_as_advanced(DNNL_INCLUDE_DIR DNNL_LIBRARY)
