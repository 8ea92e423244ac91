//! The seeds gathered so far, and the byte helpers the sources share.

#[derive(Default)]
pub(super) struct Seeds {
    /// (target, file name, contents, source).
    pub(super) files: Vec<(&'static str, String, Vec<u8>, &'static str)>,
    pub(super) notes: Vec<String>,
}

impl Seeds {
    pub(super) fn add(
        &mut self,
        target: &'static str,
        name: &str,
        data: Vec<u8>,
        source: &'static str,
    ) {
        self.files.push((target, name.to_string(), data, source));
    }
}

pub(super) fn le16(v: u16) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
