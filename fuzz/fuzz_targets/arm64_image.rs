//! The Linux arm64 `Image` header (`boot::arm64_image::Header::parse`)
//! and the load address derived from it. Input: le64 file size, le64
//! lowest base, then the file's first bytes.
#![no_main]

use hotstub::boot::arm64_image::{Header, BASE_ALIGN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let file_size = u64::from_le_bytes(data[0..8].try_into().unwrap());
    let min_base = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let head = &data[16..];
    let Ok(h) = Header::parse(head, file_size) else {
        return;
    };
    assert!(h.text_offset < BASE_ALIGN && h.text_offset % 4096 == 0);
    assert!(h.image_size >= file_size);
    assert_eq!(h.flags & 1, 0);
    if let Some(a) = h.load_address(min_base) {
        assert!(a >= min_base);
        assert_eq!((a - h.text_offset) % BASE_ALIGN, 0);
        assert!(a - h.text_offset < min_base.saturating_add(BASE_ALIGN));
    }
});
