//! What pacing decides for a job before anything is claimed: send now, wait in-process,
//! hold, or give it back to the queue.

use super::*;

/// What pacing decided for a job before anything is claimed.
pub(super) enum Plan {
    /// Claim and send at this instant.
    Send { at: Instant, profile: Arc<Sending> },
    /// The token is refused, or the tenant disabled: claim and hold.
    Hold(Arc<Sending>),
    /// The customer's slot comes at `at` (within the horizon): wait, then take a slot on
    /// the number's send timeline.
    Later {
        at: Instant,
        held: Booking,
        profile: Arc<Sending>,
    },
    /// Not now: the job goes back to the queue.
    Defer {
        job: Box<SendJob>,
        reason: &'static str,
    },
    /// The tenant could not be read: record, retry.
    Broken(MessageError),
    /// Nothing to decide: the message is not this attempt's to send.
    Skip,
}

/// The job again, for a new SQS message delayed until `until` (local epoch ms).
pub(super) fn again_at(job: &SendJob, until: i64, customer_booked: bool) -> Box<SendJob> {
    let mut job = job.clone();
    job.not_before = Some(until);
    job.customer_booked = customer_booked;
    Box::new(job)
}

/// A job deferred until `until` (local epoch ms), holding `booked`.
pub(super) fn deferred(job: &SendJob, until: i64, booked: Booking, reason: &'static str) -> Plan {
    Plan::Defer {
        job: again_at(job, until, booked.customer),
        reason,
    }
}

/// How often a message behind an earlier one of its customer asks again (in-process, up to
/// [`HORIZON`]; then its job goes back to the queue for a second).
pub(super) const BEHIND_POLL: Duration = Duration::from_millis(100);

/// The wait before asking again for a message behind an earlier one (which is stale at
/// `until`, Redis's epoch ms).
pub(super) fn behind_wait(until: i64, now: i64) -> Duration {
    Duration::from_millis((until - now).max(0) as u64).min(BEHIND_POLL)
}

/// API sends are the tenant's marketing; bot replies answer the customer.
pub(super) fn is_api_send(job: &SendJob) -> bool {
    job.idempotency_key.starts_with(API_KEY_PREFIX)
}

impl Sender {
    /// Pacing's verdict on one job.
    pub(super) async fn plan(&self, profile: Arc<Sending>, job: &SendJob) -> Plan {
        if profile.token_state == TokenState::Invalid || profile.status == TenantStatus::Disabled {
            return Plan::Hold(profile);
        }
        let now = now_ms();
        if is_api_send(job)
            && let Some(until) = profile.marketing_paused_until.filter(|u| *u > now)
        {
            return deferred(job, until, Booking::default(), "tenant_paused");
        }
        let mut held = job.booking();
        if let Some(at) = held.not_before
            && at - now > HORIZON.as_millis() as i64
        {
            // Early (a deferral longer than one SQS delay hops): nothing to decide yet.
            return deferred(job, at, held, "scheduled");
        }
        let decided = self.admit_send(&profile, job, held).await;
        let local = now_ms();
        match decided {
            Decision::Send { at, now } => Plan::Send {
                at: Instant::now() + Duration::from_millis((at - now).max(0) as u64),
                profile,
            },
            Decision::Customer { until, now } => {
                let wait = (until - now).max(0);
                if wait > HORIZON.as_millis() as i64 {
                    let booked = Booking {
                        not_before: Some(local + wait),
                        customer: true,
                    };
                    return deferred(job, local + wait, booked, "customer");
                }
                // Near: the attempt waits for the customer's slot, then takes the number's
                // (so this lane's next message is decided now, not after the wait).
                held = Booking {
                    not_before: Some(until),
                    customer: true,
                };
                Plan::Later {
                    at: Instant::now() + Duration::from_millis(wait as u64),
                    held,
                    profile,
                }
            }
            Decision::Number { until, now } => {
                deferred(job, local + (until - now).max(0), held, "number")
            }
            Decision::Behind { until, now } => Plan::Later {
                at: Instant::now() + behind_wait(until, now),
                held,
                profile,
            },
            Decision::Unpaced => Plan::Send {
                at: Instant::now(),
                profile,
            },
        }
    }

    /// A slot on the number's send timeline (and the customer's, unless `held` has it).
    pub(super) async fn admit_send(
        &self,
        profile: &Sending,
        job: &SendJob,
        held: Booking,
    ) -> Decision {
        let lane = Lane {
            phone_number_id: profile.number(job.from.as_deref()),
            customer: &job.to,
        };
        pacing::admit(
            &self.state.locks,
            &lane,
            &profile.pacing,
            held,
            Timeline::Send,
            &job.message_id.to_hex(),
        )
        .await
    }

    /// After holding messages for a token that was replaced meanwhile (the replacement's
    /// release ran before the hold was written), release them now.
    pub(super) async fn release_if_replaced(&self, tenant: &TenantId, version: i64) {
        match tenant::token_version(&self.state.store, tenant).await {
            Ok(current) if current != version => {
                self.state.sending.invalidate(tenant);
                if let Err(e) = outbox::release_held(self.state.outbox(), tenant).await {
                    // Released but not enqueued: the relay enqueues them after its grace.
                    e.log();
                }
            }
            Ok(_) => {}
            Err(e) => e.log(),
        }
    }

    pub(super) fn throttled_until(&self, number: &str) -> Option<Instant> {
        let mut map = self.throttled.lock().ok()?;
        let until = *map.get(number)?;
        if until <= Instant::now() {
            map.remove(number);
            return None;
        }
        Some(until)
    }
}
