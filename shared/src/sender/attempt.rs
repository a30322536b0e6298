//! One attempt: the claim checked, the Graph call, and what its answer means for the
//! message (sent, retried, failed, held, deferred).

use super::*;

/// What one message's attempt produced.
pub(super) struct Attempted {
    pub(super) outcome: Outcome,
    /// The outcome to record with the batch.
    pub(super) finish: Option<Finish>,
    /// A send: once recorded, its statuses may be waiting.
    pub(super) sent: Option<(TenantId, String)>,
    /// Held for this token version.
    pub(super) held: Option<(TenantId, i64)>,
}

impl Attempted {
    pub(super) fn done() -> Self {
        Self::of(Outcome::Done, None)
    }

    pub(super) fn of(outcome: Outcome, finish: Option<Finish>) -> Self {
        Self {
            outcome,
            finish,
            sent: None,
            held: None,
        }
    }
}

impl Sender {
    /// One message's attempt.
    pub(super) async fn attempt(
        &self,
        tenant: TenantId,
        job: &SendJob,
        plan: Plan,
        claim: Claim,
        remembered: &HashMap<MessageId, String>,
    ) -> Attempted {
        let message = match claim {
            Claim::Claimed { message, .. } => message,
            Claim::Finished => return Attempted::done(),
            Claim::Busy { until } => {
                let wait = (until.timestamp_millis() - DateTime::now().timestamp_millis()).max(0);
                return Attempted::of(
                    Outcome::Retry(Some(Duration::from_millis(wait as u64 + 1000))),
                    None,
                );
            }
            Claim::Missing => {
                tracing::error!(tenantId = %tenant, "send job for an unknown message acknowledged");
                return Attempted::done();
            }
        };
        let finish = |attempt| Finish {
            id: message.id,
            tenant_id: message.tenant_id,
            attempt,
        };
        // Given back before Graph was called: queued again, as a new delayed job.
        let give_back = |next: Box<SendJob>, reason: &'static str| {
            metrics::count(Metric::SendDeferred, &[("Reason", reason)]);
            Attempted::of(Outcome::Requeue(next), Some(finish(Attempt::Deferred)))
        };
        let retry = |code: &str, title: String| {
            let error = MessageError {
                code: code.into(),
                title,
                details: None,
            };
            Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))))
        };
        if message.tenant_id != tenant {
            tracing::error!(tenantId = %tenant, messageId = %message.id, "send job names another tenant's message");
            return retry(
                "tenant_mismatch",
                "job tenant does not own the message".into(),
            );
        }
        if let Some(wamid) = remembered.get(&message.id) {
            return self
                .sent(
                    tenant,
                    finish(Attempt::Sent {
                        wamid: wamid.clone(),
                    }),
                    wamid,
                )
                .await;
        }
        let (at, profile) = match plan {
            // Attempts start once the whole batch is decided: the few milliseconds that took
            // (a customer's later messages are decided after its earlier ones) are not
            // lateness, or an earlier message would lose its slot to a later one.
            Plan::Send { at, profile } => (at.max(Instant::now()), profile),
            Plan::Later { at, held, profile } => {
                let give_up = Instant::now() + HORIZON;
                let mut at = at;
                loop {
                    tokio::time::sleep_until(at).await;
                    match self.admit_send(&profile, job, held).await {
                        Decision::Send { at, now } => {
                            let wait = Duration::from_millis((at - now).max(0) as u64);
                            break (Instant::now() + wait, profile);
                        }
                        Decision::Behind { until, now } if Instant::now() < give_up => {
                            at = Instant::now() + behind_wait(until, now);
                        }
                        Decision::Behind { .. } => {
                            // Still behind: its job asks again in a second, from the queue.
                            let next = again_at(job, now_ms() + 1000, true);
                            return give_back(next, "order");
                        }
                        Decision::Number { until, now } | Decision::Customer { until, now } => {
                            let next = again_at(job, now_ms() + (until - now).max(0), true);
                            return give_back(next, "number");
                        }
                        Decision::Unpaced => break (Instant::now(), profile),
                    }
                }
            }
            Plan::Hold(profile) => {
                return self.hold(tenant, &profile, finish, None).await;
            }
            Plan::Broken(error) => {
                return Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))));
            }
            Plan::Defer { job, reason } => return give_back(job, reason),
            Plan::Skip => return Attempted::of(Outcome::Retry(None), None),
        };
        let number = profile.number(job.from.as_deref());
        if let Err(e) = failpoint::hit("sender.before_graph").await {
            return retry("failpoint", e.to_string());
        }
        let token = match self.state.token(&tenant, &profile).await {
            Ok(t) => t,
            Err(e) => return retry("credentials", e.to_string()),
        };
        let Some(content) = message.content.as_ref() else {
            let error = MessageError {
                code: "no_content".into(),
                title: "message has no content".into(),
                details: None,
            };
            return Attempted::of(Outcome::Done, Some(finish(Attempt::Failed(error))));
        };
        tokio::time::sleep_until(at).await;
        let lane = Lane {
            phone_number_id: number,
            customer: &message.customer_wa_id,
        };
        // Left its slot late (a slow claim, a busy process): a new slot, or sends would
        // bunch up and break the number's rate.
        if Instant::now().saturating_duration_since(at) > profile.pacing.late_tolerance() {
            let again = Booking {
                not_before: None,
                customer: true,
            };
            let decided = self.admit_send(&profile, job, again).await;
            if let Decision::Send { at: until, now } | Decision::Number { until, now } = decided {
                let wait = (until - now).max(0);
                if wait > HORIZON.as_millis() as i64 {
                    return give_back(again_at(job, now_ms() + wait, true), "late");
                }
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
        }
        if let Some(until) = self.throttled_until(number) {
            let wait = until.saturating_duration_since(Instant::now());
            let next = again_at(job, now_ms() + wait.as_millis() as i64, false);
            return give_back(next, "throttled");
        }
        let sent = self
            .graph
            .send(number, &token, &message.customer_wa_id, content)
            .await;
        if job.customer_booked {
            pacing::sent(&self.state.locks, &lane, &message.id.to_hex()).await;
        }
        let e = match sent {
            Ok(wamid) => {
                tracing::info!(tenantId = %tenant, messageId = %message.id, wamid = %wamid, attempt = message.attempts + 1, "sent");
                metrics::count(Metric::SendOk, &[("PhoneNumberId", number)]);
                return self
                    .sent(
                        tenant,
                        finish(Attempt::Sent {
                            wamid: wamid.clone(),
                        }),
                        &wamid,
                    )
                    .await;
            }
            Err(e) => e,
        };
        let error = MessageError {
            code: e.code.clone(),
            title: e.title.clone(),
            details: e.details.clone(),
        };
        let class = match e.class {
            ErrorClass::Retry => "retry",
            ErrorClass::PaceNumber => "pace_number",
            ErrorClass::PaceCustomer => "pace_customer",
            ErrorClass::BackOffTenant => "back_off_tenant",
            ErrorClass::Hold => "hold",
            ErrorClass::Permanent => "permanent",
        };
        metrics::count(Metric::SendFailed, &[("ErrorClass", class)]);
        tracing::warn!(tenantId = %tenant, messageId = %message.id, code = %e.code, class, attempt = message.attempts + 1, "send refused by Graph");
        // Pacing codes go back as a fresh, delayed job: Meta asked us to wait, which is no
        // reason to move the message towards the DLQ.
        let later = |after: Duration| {
            Outcome::Requeue(again_at(job, now_ms() + after.as_millis() as i64, false))
        };
        match e.class {
            ErrorClass::Retry => {
                Attempted::of(Outcome::Retry(None), Some(finish(Attempt::Retry(error))))
            }
            ErrorClass::Permanent => {
                Attempted::of(Outcome::Done, Some(finish(Attempt::Failed(error))))
            }
            ErrorClass::PaceNumber => {
                if let Ok(mut t) = self.throttled.lock() {
                    t.insert(number.to_owned(), Instant::now() + Duration::from_secs(1));
                }
                pacing::slow_number(&self.state.locks, &lane).await;
                Attempted::of(
                    later(Duration::from_secs(1)),
                    Some(finish(Attempt::Retry(error))),
                )
            }
            ErrorClass::PaceCustomer => {
                pacing::push_customer(&self.state.locks, &lane, &profile.pacing).await;
                Attempted::of(
                    later(Duration::from_secs(1)),
                    Some(finish(Attempt::Retry(error))),
                )
            }
            ErrorClass::BackOffTenant => {
                let pause = profile.pacing.marketing_backoff();
                let until = DateTime::from_millis(now_ms() + pause.as_millis() as i64);
                if let Err(e) = tenant::pause_marketing(&self.state.store, &tenant, until).await {
                    e.log();
                }
                self.state.sending.invalidate(&tenant);
                Attempted::of(
                    later(pause.max(Duration::from_secs(1))),
                    Some(finish(Attempt::Retry(error))),
                )
            }
            ErrorClass::Hold => self.hold(tenant, &profile, finish, Some(error)).await,
        }
    }

    /// Holds a message of a tenant whose token Graph refused (`error`: this attempt's, else
    /// the tenant's token is already known invalid) or that is disabled.
    pub(super) async fn hold(
        &self,
        tenant: TenantId,
        profile: &Sending,
        finish: impl Fn(Attempt) -> Finish,
        error: Option<MessageError>,
    ) -> Attempted {
        let error = match error {
            Some(error) => {
                match tenant::mark_token_invalid(
                    &self.state.store,
                    &tenant,
                    profile.token_version,
                    &error,
                )
                .await
                {
                    Ok(true) => {}
                    // Replaced meanwhile: the next attempt uses the new token.
                    Ok(false) => {
                        self.state.sending.invalidate(&tenant);
                        return Attempted::of(
                            Outcome::Retry(Some(Duration::from_secs(1))),
                            Some(finish(Attempt::Retry(error))),
                        );
                    }
                    Err(e) => {
                        e.log();
                        return Attempted::of(
                            Outcome::Retry(None),
                            Some(finish(Attempt::Retry(error))),
                        );
                    }
                }
                self.state.sending.invalidate(&tenant);
                error
            }
            None if profile.status == TenantStatus::Disabled => MessageError {
                code: "tenant_disabled".into(),
                title: "Held: the tenant is disabled; activate it to deliver".into(),
                details: None,
            },
            None => MessageError {
                code: "token_invalid".into(),
                title: "Held: the tenant's access token was refused; replace it to deliver".into(),
                details: None,
            },
        };
        metrics::count(Metric::SendHeld, &[]);
        let mut held = Attempted::of(Outcome::Done, Some(finish(Attempt::Held(error))));
        held.held = Some((tenant, profile.token_version));
        held
    }

    pub(super) async fn sent(&self, tenant: TenantId, finish: Finish, wamid: &str) -> Attempted {
        self.keep_sent(&finish, wamid);
        Attempted {
            outcome: Outcome::Done,
            finish: Some(finish),
            sent: Some((tenant, wamid.to_owned())),
            held: None,
        }
    }
}
