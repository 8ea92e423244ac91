//! gzip'd kernels (`boot::gzip::inflate`): the member header, the DEFLATE
//! data through miniz_oxide and the trailer checks, with the output
//! bounded by the buffer. Input: the file.
#![no_main]

use hotstub::boot::gzip::{inflate, Error};
use libfuzzer_sys::fuzz_target;

/// Room for the output: well past what a few KiB of input inflate to in
/// most cases, so both the whole path and the bound are reached.
const ROOM: usize = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; ROOM];
    match inflate(data, &mut out) {
        Ok(n) => {
            assert!(n <= ROOM);
            // The same input in a buffer of exactly its output's size.
            let mut exact = vec![0u8; n];
            assert_eq!(inflate(data, &mut exact), Ok(n));
            assert_eq!(exact[..], out[..n]);
        }
        Err(Error::TooLarge) => assert!(!data.is_empty()),
        Err(_) => {}
    }
});
