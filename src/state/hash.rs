//! A hash that is the same on every build, for what is kept on disk or compared across
//! processes (screens, texts sent, manifest generations).

/// FNV-1a over `bytes`: the same on every build (unlike `DefaultHasher`).
pub(crate) fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
