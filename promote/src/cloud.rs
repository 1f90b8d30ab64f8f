//! The cloud adapters: thin calls to Lambda, API Gateway, CloudWatch and CodeDeploy, each
//! behind a trait the reconciler and the sources use ([`aws::Cloud`]), and the in-memory
//! stand-ins the tests use in their place. Nothing here decides.

pub mod aws;
pub mod codedeploy;

#[cfg(test)]
mod aws_tests;
// The in-memory stand-ins: built for this crate's tests and, through the "testing" feature
// that only its dev-dependency on itself enables, for its integration tests; never in the
// shipped binary.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fake;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fake_codedeploy;
