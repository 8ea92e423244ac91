//! The fw_cfg file directory (`platform::fw_cfg::Directory::parse`), as
//! the firmware reads it from key FILE_DIR. Input: the raw item.
#![no_main]

use hotstub::platform::fw_cfg::Directory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = Directory::parse(data) else {
        // Only a count beyond QEMU's limit is refused.
        assert!(data.len() >= 4);
        return;
    };
    let count = data
        .get(..4)
        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
    let room = data.len().saturating_sub(4) / 64;
    assert_eq!(dir.files().len(), count.min(room));
    for (i, f) in dir.files().iter().enumerate() {
        let name = f.name();
        assert!(name.len() <= 56 && !name.contains(&0));
        // The entry's bytes, exactly.
        let e = &data[4 + 64 * i..4 + 64 * (i + 1)];
        assert_eq!(f.size, u32::from_be_bytes([e[0], e[1], e[2], e[3]]));
        assert_eq!(f.key, u16::from_be_bytes([e[4], e[5]]));
        assert_eq!(&e[8..8 + name.len()], name);
        // Look-up by name finds the first entry with that name.
        if let Ok(s) = core::str::from_utf8(name) {
            let first = dir.files().iter().find(|g| g.name() == name).copied();
            assert_eq!(dir.find(s), first);
        }
    }
});
