//! The boot configuration parsers (`disk::conf`): a BLS entry, grub.cfg
//! and extlinux.conf, and BLS ordering. Input: the text (lossy UTF-8).
#![no_main]

use hotstub::disk::conf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut entries = Vec::new();
    for (i, chunk) in text.split("\n\n").enumerate().take(8) {
        if let Some(e) = conf::bls(&format!("e{i}-{chunk:.8}"), chunk, "x64") {
            entries.push(e);
        }
    }
    conf::bls_sort(&mut entries);
    // The order is total: sorting again changes nothing.
    let again = {
        let mut v = entries.clone();
        conf::bls_sort(&mut v);
        v
    };
    assert_eq!(again, entries);
    let g = conf::grub(&text);
    assert!(g.items.len() <= conf::MAX_ENTRIES);
    if let Some(e) = conf::grub_pick(&g, None) {
        // A picked entry is one of the parsed ones.
        assert!(e.kernel.is_none() || !e.kernel.as_ref().unwrap().contains('\n'));
    }
    let _ = conf::grub_pick(&g, Some("x"));
    let (ext, default) = conf::extlinux(&text);
    assert!(ext.len() <= conf::MAX_ENTRIES);
    if let Some(d) = default {
        assert!(!d.contains('\n'));
    }
    for w in text.lines().take(64) {
        for word in conf::words(w) {
            assert!(!word.contains('\n'));
        }
    }
});
