# Debian's xsimd 8 exports a target that links a target named `xtl`, although xsimd needs nothing
# from xtl. Without xtl-dev that name reaches the linker as -lxtl and linking fails. Use xtl when it
# is installed; otherwise stand in an empty target so the name resolves to nothing.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_tinyllm_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_tinyllm_xsimd_links MATCHES "(^|;)xtl(;|$)")
    find_package(xtl QUIET)
    if(NOT TARGET xtl)
      add_library(xtl INTERFACE IMPORTED)
    endif()
  endif()
endif()
