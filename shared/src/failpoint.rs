//! Fault injection at the steps where a crash could lose or duplicate a message, through
//! the `fail` crate's registry. Compiled in only with the `failpoints` feature (the
//! end-to-end tests turn it on); in every other build [`hit`] is an empty inline function.
//!
//! Actions, set with `fail::cfg(name, action)`: `return(error)` fails the step as a
//! dependency outage would; `return(hang)` stops the step until the function's timeout cuts
//! it off; `return(slow)` holds the step for a second (a slow dependency, a busy
//! instance); `panic` crashes the function.

use crate::error::ApiError;

#[cfg(feature = "failpoints")]
pub async fn hit(name: &str) -> Result<(), ApiError> {
    let action = (|| {
        fail::fail_point!(name, |arg| Some(arg.unwrap_or_default()));
        None
    })();
    match action.as_deref() {
        None => Ok(()),
        Some("hang") => {
            // Far past any function timeout: only the gateway's cut-off ends it.
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Ok(())
        }
        Some("slow") => {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Ok(())
        }
        Some(_) => Err(ApiError::unavailable("failpoint", name.to_owned())),
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn hit(_name: &str) -> Result<(), ApiError> {
    Ok(())
}
