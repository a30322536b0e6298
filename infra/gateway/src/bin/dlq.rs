//! `make dlq` / `make redrive`: inspect the send DLQ, move it back to the send queue.
//! Works against moto locally and AWS alike (standard AWS environment, SEND_QUEUE_URL,
//! SEND_DLQ_URL).

use shared::{config::load_dotenv, queue, state::BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    load_dotenv(std::path::Path::new(".env"));
    let command = std::env::args().nth(1).unwrap_or_else(|| "list".into());
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let dlq = var("SEND_DLQ_URL")?;
    let sqs = shared::aws::Aws::from_env().sqs();
    match command.as_str() {
        "list" => {
            let letters = queue::dead_letters(&sqs, &dlq, 1000).await?;
            for l in &letters {
                println!(
                    "{}\treceives={}\t{}",
                    l.sqs_message_id, l.receive_count, l.body
                );
            }
            println!("{} message(s) in {dlq}", letters.len());
        }
        "redrive" => {
            let moved = queue::redrive(&sqs, &dlq, &var("SEND_QUEUE_URL")?).await?;
            println!("moved {moved} message(s) back to the send queue");
        }
        other => return Err(format!("unknown command {other:?}: use list or redrive").into()),
    }
    Ok(())
}
