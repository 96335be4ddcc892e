//! An in-memory IAM and STS with scripted faults, for unit tests of everything above
//! [`Iam`](crate::aws::Iam): [`state`] holds users, keys and the record of calls, [`rules`]
//! the scripted faults and IAM's authentication and error catalogue, [`client`] answers the
//! calls, and [`account`] is the account-wide fake of the audit and `policy --apply`.
//!
//! It behaves like real IAM, not like moto: an unknown, inactive or not yet propagated key
//! gets `InvalidClientTokenId`, a wrong secret `SignatureDoesNotMatch`, a third key
//! `LimitExceeded`, an unknown user or key `NoSuchEntity`; keys belong to users; a user may
//! manage only their own keys unless made an admin (as with the policy `iam-keys policy`
//! prints); a user can be made to require MFA for the mutating calls, and GetSessionToken
//! checks the device and the code. Key ids, secrets and tokens are deterministic (counter
//! based), so test output is reproducible.
//!
//! ```ignore
//! let iam = FakeIam::new();
//! iam.add_user("alice");
//! let (old, _secret) = iam.add_key("alice", iam.now() - SignedDuration::from_hours(2400), KeyStatus::Active);
//! iam.propagation_delay(2); // new keys fail authentication for their first two calls
//! iam.fail(Action::DeleteAccessKey, Fault::once(ErrorKind::Throttling));
//! let client = iam.connector().connect(&iam.target(&old));
//! // ... run the code under test with `client` ...
//! assert_eq!(iam.count(Action::CreateAccessKey), 1);
//! ```
//!
//! Time is the fake's own: [`FakeIam::set_now`] and [`FakeIam::advance`] (a test's fake
//! clock can call them) decide `CreateDate`, `LastUsedDate` and session expiry.
//!
//! Must not: touch the network, the file system or the real clock; or put a secret in a
//! panic message or in `Debug` output.

pub mod account;
mod client;
mod rules;
mod state;
mod tests;

pub use client::{FakeClient, FakeConnector, Killed};
pub use rules::Fault;
pub use state::{ACCOUNT, Call, FakeIam, START};
