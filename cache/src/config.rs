//! Settings of the block cache.

use crate::error::CacheError;

/// 1 MiB: large enough that one GET amortises the store's per-request latency and
/// price, small enough that a fetch near the tail of an object doesn't drag in much
/// it won't use.
pub const DEFAULT_BLOCK_SIZE: u64 = 1024 * 1024;

/// 256 MiB of cached blocks.
pub const DEFAULT_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

/// How the block cache cuts objects and how much of them it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCacheConfig {
    /// Size of a block in bytes; every block but an object's last is exactly this long.
    /// At most `u32::MAX`, since the cache weighs entries in `u32`.
    pub block_size: u64,
    /// Bound on the bytes of cached blocks.
    pub capacity_bytes: u64,
}

impl Default for BlockCacheConfig {
    fn default() -> Self {
        BlockCacheConfig {
            block_size: DEFAULT_BLOCK_SIZE,
            capacity_bytes: DEFAULT_CAPACITY_BYTES,
        }
    }
}

impl BlockCacheConfig {
    /// Checks that a block size is usable and that at least one block fits.
    pub fn validate(&self) -> Result<(), CacheError> {
        let reason = if self.block_size == 0 {
            "block_size must be greater than zero"
        } else if self.block_size > u64::from(u32::MAX) {
            "block_size must be at most 4 GiB - 1 (u32::MAX bytes)"
        } else if self.block_size > self.capacity_bytes {
            "block_size must not exceed capacity_bytes, or no block could be cached"
        } else {
            return Ok(());
        };
        Err(CacheError::InvalidConfig {
            block_size: self.block_size,
            capacity_bytes: self.capacity_bytes,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn config(block_size: u64, capacity_bytes: u64) -> BlockCacheConfig {
        BlockCacheConfig {
            block_size,
            capacity_bytes,
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(BlockCacheConfig::default().validate().is_ok());
    }

    #[test]
    fn a_block_as_large_as_the_capacity_is_valid() {
        assert!(config(4096, 4096).validate().is_ok());
    }

    #[test]
    fn zero_block_size_is_rejected() {
        let err = config(0, 1024).validate().expect_err("zero block size");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(
            err.to_string()
                .contains("block_size must be greater than zero"),
            "{err}"
        );
    }

    #[test]
    fn a_block_larger_than_the_capacity_is_rejected() {
        let err = config(2048, 1024)
            .validate()
            .expect_err("block over capacity");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let message = err.to_string();
        assert!(message.contains("block_size 2048"), "{message}");
        assert!(message.contains("capacity_bytes 1024"), "{message}");
    }

    #[test]
    fn a_block_over_u32_is_rejected() {
        let err = config(1 << 32, 1 << 40)
            .validate()
            .expect_err("block over u32");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
}
