# liblamina_distributed (Lamina::distributed): the MPI and Gloo transports of
# distributed::Communicator (include/lamina/distributed_backends.hpp), kept out of liblamina so
# that liblamina itself needs no MPI. Included from the top-level CMakeLists.txt.

# OpenMPI's deprecated C++ bindings (libmpi_cxx) are not used: the C API only.
set(MPI_CXX_SKIP_MPICXX ON CACHE BOOL "Skip the MPI C++ bindings")
find_package(MPI REQUIRED COMPONENTS CXX)
# Debian's libgloo-dev: headers in /usr/include/gloo, libgloo.so in /usr/lib (its CMake config
# only knows a RelWithDebInfo build, so it is found by hand).
find_path(GLOO_INCLUDE_DIR gloo/allreduce.h)
find_library(GLOO_LIBRARY gloo)
if(NOT GLOO_INCLUDE_DIR OR NOT GLOO_LIBRARY)
  message(FATAL_ERROR "Gloo not found (libgloo-dev): run scripts/setup.sh")
endif()

add_library(lamina_distributed SHARED
  src/distributed/mpi.cpp
  src/distributed/gloo.cpp
  src/distributed/init.cpp
)
add_library(Lamina::distributed ALIAS lamina_distributed)
target_link_libraries(lamina_distributed PUBLIC Lamina::lamina PRIVATE MPI::MPI_CXX ${GLOO_LIBRARY})
target_include_directories(lamina_distributed PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_include_directories(lamina_distributed SYSTEM PRIVATE ${GLOO_INCLUDE_DIR})
target_compile_options(lamina_distributed PRIVATE ${LAMINA_WARNINGS})
# Installed beside liblamina: RUNPATH $ORIGIN finds it there.
set_target_properties(lamina_distributed PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 0
                                                    CXX_VISIBILITY_PRESET default EXPORT_NAME distributed
                                                    INSTALL_RPATH "$ORIGIN")
install(TARGETS lamina_distributed EXPORT LaminaTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
