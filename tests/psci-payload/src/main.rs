//! PSCI test payload: a bare-metal arm64 `Image` that the firmware boots
//! like Linux and that checks the firmware's PSCI answers one by one,
//! printing `PSCI-TEST: <check>: PASS|FAIL|SKIP ...` lines and a summary,
//! then powering off with SYSTEM_OFF. See README.md.
#![cfg_attr(target_os = "none", no_std, no_main)]

// The parsers build on the host too, for their unit tests.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod machine;

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod hw;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod run;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("psci-payload is a bare-metal aarch64 program: see tests/psci-payload/README.md");
    std::process::exit(2);
}
