//! Sets pyo3's `Py_3_x` cfgs for the Python built for, so that
//! rust/cpython.rs can choose CPython internals per version at compile time.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
