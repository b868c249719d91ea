//! Conversions between the protocol's messages and bigmgr_core's.
