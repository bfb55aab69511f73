# ferry_add_plugin(<target> KIND provider|router|middleware|frontend NAME <name> SOURCES <files...>)
#
# Builds a loadable Ferry plugin: a MODULE library named ferry_<kind>_<name>.so
# (dashes in NAME become underscores), linked against Ferry::sdk only, with
# hidden symbols so that the entry point is its one export, and with
# --no-undefined so that it cannot depend on symbols of the host (ABI.md R7).
function(ferry_add_plugin target)
  cmake_parse_arguments(FP "" "KIND;NAME" "SOURCES" ${ARGN})
  if(NOT FP_KIND MATCHES "^(provider|router|middleware|frontend)$")
    message(FATAL_ERROR "ferry_add_plugin(${target}): KIND must be provider, router, middleware or frontend")
  endif()
  if(NOT FP_NAME)
    message(FATAL_ERROR "ferry_add_plugin(${target}): NAME is required")
  endif()
  string(REPLACE "-" "_" file_name "${FP_NAME}")
  add_library(${target} MODULE ${FP_SOURCES})
  target_link_libraries(${target} PRIVATE Ferry::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "ferry_${FP_KIND}_${file_name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(NOT APPLE)
    target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  endif()
endfunction()
