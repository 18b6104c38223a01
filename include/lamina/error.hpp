// Lamina's exceptions. The library throws, never exits; tools/lamina.cpp turns them into
// exit codes. Messages say what was expected, what was received and where.
#pragma once

#include <stdexcept>
#include <string>

namespace lamina {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Shapes that do not fit an op or a layer: the message names the op and the shapes.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value out of its domain: a bad argument, a label out of range, a NaN where none may be.
class ValueError : public Error {
 public:
  using Error::Error;
};

// Reading or writing a file failed: the message names the path and the field.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace lamina
