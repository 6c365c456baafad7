"""E-mail notifications of alerts to people: transactional outbox, composition, leased SMTP delivery."""
