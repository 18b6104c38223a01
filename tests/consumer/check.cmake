# Installs the build tree into a fresh prefix, then configures, builds and runs
# tests/consumer against it with find_package(Lamina). Run by ctest (install.find_package).
file(REMOVE_RECURSE "${WORK}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install "${LAMINA_BUILD}" --prefix "${WORK}/prefix")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE}" -B "${WORK}/build" -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK}/build")
run("${WORK}/build/consumer")
execute_process(COMMAND "${WORK}/build/focal_digits" "${DIGITS}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "focal_digits: ${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "focal_digits failed (${rc})")
endif()
# The README's snippets with clang too, where it is installed (its narrowing rules are stricter).
find_program(CLANGXX clang++)
if(CLANGXX)
  run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE}" -B "${WORK}/build-clang" -DCMAKE_PREFIX_PATH=${WORK}/prefix
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CLANGXX})
  run(${CMAKE_COMMAND} --build "${WORK}/build-clang" --target readme_snippets focal_digits)
  message(STATUS "clang: the README's snippets and focal_digits compile")
endif()
message(STATUS "consumer built and ran against ${WORK}/prefix")
