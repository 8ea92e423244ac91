#[cfg(target_arch = "x86_64")]
mod x86_64;

// The aarch64 code is reached only through its `_start` and #[no_mangle]
// entry points: nothing to re-export.
#[cfg(target_arch = "aarch64")]
mod aarch64;
