//! Links Debian's libopencore-amrnb (package libopencore-amrnb-dev) for the AMR-NB decoder FFI.
//! libopus is linked by opusic-sys (via symphonia-adapter-libopus, `bundled` off).
fn main() {
    println!("cargo:rustc-link-lib=opencore-amrnb");
    println!("cargo:rerun-if-changed=build.rs");
}
