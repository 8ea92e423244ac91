//! The disk search on a fat file system (`disk::find`, then reading
//! the payload it found). Input: the file system's bytes, placed behind a
//! one-partition MBR.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "disk_fs.rs"]
mod disk_fs;

fuzz_target!(|data: &[u8]| disk_fs::run(data, 0x0c));
