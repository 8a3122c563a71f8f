# Turns a text file into a C++ header holding it as a string (the explain page's template, so that
# it stays an ordinary HTML file to edit). Run as a build step:
#   cmake -DINPUT=file -DOUTPUT=header.hpp -DNAME=identifier -P embed_file.cmake
file(READ "${INPUT}" content)
set(delim "tinyllm_embed")
string(FIND "${content}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delim}\"")
endif()
# Pieces of at most 8000 bytes, concatenated by the compiler (some compilers limit one literal).
string(LENGTH "${content}" n)
set(pieces "")
set(i 0)
while(i LESS n)
  string(SUBSTRING "${content}" ${i} 8000 piece)
  string(APPEND pieces "R\"${delim}(${piece})${delim}\"\n")
  math(EXPR i "${i} + 8000")
endwhile()
get_filename_component(source "${INPUT}" NAME)
file(WRITE "${OUTPUT}" "// Generated from ${source} by embed_file.cmake at build time: edit ${source}, not this.\n#pragma once\n\nnamespace tinyllm::cli {\ninline const char* const ${NAME} =\n${pieces};\n}  // namespace tinyllm::cli\n")
