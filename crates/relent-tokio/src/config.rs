//! placeholder
/// x
pub struct Config;
/// x
pub struct KeyConfig;
/// x
pub struct TargetConfig;
