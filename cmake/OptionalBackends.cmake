# Optional backends: src/backends/<dir>/*_impl.cc need a library; spec.cc (the registry entry)
# is always built. When the library is found, the impl sources join encserve_backends with
# ENCSERVE_HAVE_<NAME>=1; otherwise configure says why and the backend reports "not available".
# scripts/setup.sh installs all three libraries, so CI builds and tests every backend.
option(ENCSERVE_WITH_TORCH "Build the torch backend (Debian libtorch-dev)" ON)
option(ENCSERVE_WITH_OPENVINO "Build the onnx backend (ONNX models on OpenVINO, PyPI openvino)" ON)
option(ENCSERVE_WITH_MLX "Build the mlx backend (PyPI mlx[cpu])" ON)
set(ENCSERVE_PYTHON "python3" CACHE STRING "Python whose site-packages hold openvino and mlx")

set(ENCSERVE_BACKENDS_BUILT "")
function(encserve_optional_backend dir define found why)
  if(NOT found)
    message(STATUS "encserve: backend '${dir}' OFF: ${why}")
    return()
  endif()
  file(GLOB impl CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backends/${dir}/*_impl.cc)
  target_sources(encserve_backends PRIVATE ${impl})
  target_link_libraries(encserve_backends PUBLIC ${ARGN})
  target_compile_definitions(encserve_backends PRIVATE ${define}=1)
  set(ENCSERVE_BACKENDS_BUILT "${ENCSERVE_BACKENDS_BUILT} ${dir}" PARENT_SCOPE)
  message(STATUS "encserve: backend '${dir}' ON")
endfunction()

# The directory of an installed Python package ("" when it is not installed).
function(encserve_python_package_dir package out)
  execute_process(
    COMMAND ${ENCSERVE_PYTHON} -c "import ${package}, os; print(os.path.dirname(${package}.__file__) if ${package}.__file__ else ${package}.__path__[0])"
    OUTPUT_VARIABLE dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    set(dir "")
  endif()
  set(${out} "${dir}" PARENT_SCOPE)
endfunction()

# torch: libtorch from Debian (TorchConfig.cmake).
set(torch_found FALSE)
set(torch_why "ENCSERVE_WITH_TORCH=OFF")
if(ENCSERVE_WITH_TORCH)
  find_package(Torch CONFIG QUIET)
  set(torch_found ${Torch_FOUND})
  set(torch_why "libtorch not found (apt install libtorch-dev)")
endif()
encserve_optional_backend(torch ENCSERVE_HAVE_TORCH "${torch_found}" "${torch_why}" ${TORCH_LIBRARIES})

# onnx: the OpenVINO runtime + ONNX frontend from the PyPI wheel (openvino/cmake).
set(ov_found FALSE)
set(ov_why "ENCSERVE_WITH_OPENVINO=OFF")
if(ENCSERVE_WITH_OPENVINO)
  encserve_python_package_dir(openvino ov_dir)
  set(ov_why "the openvino Python package is not installed for ${ENCSERVE_PYTHON} (pip install openvino)")
  if(ov_dir)
    find_package(OpenVINO CONFIG QUIET PATHS ${ov_dir}/cmake NO_DEFAULT_PATH COMPONENTS Runtime ONNX)
    set(ov_found ${OpenVINO_FOUND})
    set(ov_why "${ov_dir}/cmake has no usable OpenVINOConfig.cmake")
  endif()
endif()
encserve_optional_backend(openvino ENCSERVE_HAVE_OPENVINO "${ov_found}" "${ov_why}"
                          openvino::runtime)

# mlx: libmlx + headers from the PyPI wheel mlx[cpu] (mlx/share/cmake/MLX).
set(mlx_found FALSE)
set(mlx_why "ENCSERVE_WITH_MLX=OFF")
if(ENCSERVE_WITH_MLX)
  encserve_python_package_dir(mlx mlx_dir)
  set(mlx_why "the mlx Python package is not installed for ${ENCSERVE_PYTHON} (pip install 'mlx[cpu]')")
  if(mlx_dir)
    find_package(MLX CONFIG QUIET PATHS ${mlx_dir}/share/cmake NO_DEFAULT_PATH)
    set(mlx_found ${MLX_FOUND})
    set(mlx_why "${mlx_dir}/share/cmake has no usable MLXConfig.cmake")
  endif()
endif()
encserve_optional_backend(mlx ENCSERVE_HAVE_MLX "${mlx_found}" "${mlx_why}" mlx)
if(mlx_found)
  target_include_directories(encserve_backends SYSTEM PRIVATE ${MLX_INCLUDE_DIRS})
endif()
message(STATUS "encserve: optional backends built:${ENCSERVE_BACKENDS_BUILT}")
