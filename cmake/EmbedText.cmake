# cmake -DIN=file -DOUT=file.cc -DHEADER=path/of/header.h -DFUNC=Ns::Name -P EmbedText.cmake
# Writes a C++ file whose function FUNC returns IN's bytes as a string_view
# (a raw string literal), so that a page ships inside the binary and is still
# edited as a plain file. Fails if IN contains the literal's delimiter.
file(READ "${IN}" content)
set(delim "edgespool_embed")
string(FIND "${content}" ")${delim}\"" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )${delim}\"")
endif()
string(REGEX REPLACE "::[^:]*$" "" ns "${FUNC}")
string(REGEX REPLACE "^.*::" "" name "${FUNC}")
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by cmake/EmbedText.cmake: edit that file instead.\n"
  "#include \"${HEADER}\"\n\nnamespace ${ns} {\n\n"
  "std::string_view ${name}() {\n"
  "  static constexpr char kText[] = R\"${delim}(${content})${delim}\";\n"
  "  return {kText, sizeof kText - 1};\n}\n\n}  // namespace ${ns}\n")
# Only touch OUT when it changed, so that an unchanged page rebuilds nothing.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
