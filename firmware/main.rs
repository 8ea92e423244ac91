//! The Hotstub firmware image. Architecture entry code lives in `arch`; all
//! platform-independent logic is in the `hotstub` library.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hotstub is firmware: build it with `cargo xtask build`");
    std::process::exit(2);
}
