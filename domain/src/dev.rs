//! The dev profile's fixtures, as the contract gives them: the test merchant
//! (its id, key, secret and webhook secret) and the dashboard users. The
//! command API seeds them in the dev profile; tests, the load generator and
//! the dashboard's docs page quote them from here.

pub const DEV_MERCHANT_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000);
pub const DEV_MERCHANT_EMAIL: &str = "test@example.com";
pub const DEV_API_KEY: &str = "key_test_abc123";
pub const DEV_API_SECRET: &str = "secret_test_xyz789";
pub const DEV_WEBHOOK_SECRET: &str = "whsec_test_abc123";
/// 2 % per capture.
pub const DEV_FEE_BPS: u32 = 200;

pub const DEV_MERCHANT_PASSWORD: &str = "test123";
pub const DEV_STAFF_EMAIL: &str = "admin@example.com";
pub const DEV_STAFF_PASSWORD: &str = "admin123";
pub const DEV_AUDITOR_EMAIL: &str = "auditor@example.com";
pub const DEV_AUDITOR_PASSWORD: &str = "auditor123";
