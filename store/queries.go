package store

// The SQL of the store, written once for both dialects. Only the locking
// suffixes in dialectQueries differ.

const (
	serviceColumns = `id, name, is_default, code_length, code_ttl_ms, max_sends, send_window_ms, max_attempts,
	template, webotp_domain, one_subject_per_phone, reject_already_verified, token_ttl_ms, created_at, updated_at,
	limits`

	qSelectService        = `SELECT ` + serviceColumns + ` FROM services WHERE id = $1`
	qSelectDefaultService = `SELECT ` + serviceColumns + ` FROM services WHERE is_default = 1`
	qSelectServices       = `SELECT ` + serviceColumns + ` FROM services ORDER BY created_at, id`
	qInsertService        = `INSERT INTO services (` + serviceColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
	qUpdateService = `UPDATE services SET name = $2, is_default = $3, code_length = $4, code_ttl_ms = $5,
	max_sends = $6, send_window_ms = $7, max_attempts = $8, template = $9, webotp_domain = $10,
	one_subject_per_phone = $11, reject_already_verified = $12, token_ttl_ms = $13, created_at = $14,
	updated_at = CASE WHEN $15 > updated_at THEN $15 ELSE updated_at + 1 END, limits = $16
	WHERE id = $1 AND updated_at = $17 RETURNING updated_at`
	qUpdateServiceLimits = `UPDATE services SET limits = $2,
	updated_at = CASE WHEN $3 > updated_at THEN $3 ELSE updated_at + 1 END WHERE id = $1`

	verificationColumns = `id, service_id, phone, country, channel, status, subject, amount, payee, locale,
	send_count, attempts, max_attempts, code_hash, expires_at, created_at, updated_at`

	qSelectVerification = `SELECT ` + verificationColumns + ` FROM verifications WHERE id = $1 AND service_id = $2`
	// qSelectLatestByPhone reads the newest verification of a number.
	qSelectLatestByPhone = `SELECT v.id, v.service_id, v.phone, v.country, v.channel, v.status, v.subject,
	v.amount, v.payee, v.locale, v.send_count, v.attempts, v.max_attempts, v.code_hash, v.expires_at,
	v.created_at, v.updated_at
	FROM numbers n JOIN verifications v ON v.id = n.latest_id
	WHERE n.service_id = $1 AND n.phone = $2`
	qInsertVerification = `INSERT INTO verifications (` + verificationColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
	// qUpdateVerification writes every mutable field; $3 (the phone) is
	// bound for symmetry with the insert and must match.
	qUpdateVerification = `UPDATE verifications SET country = $4, channel = $5, status = $6, subject = $7,
	amount = $8, payee = $9, locale = $10, send_count = $11, attempts = $12, max_attempts = $13,
	code_hash = $14, expires_at = $15, created_at = $16, updated_at = $17
	WHERE id = $1 AND service_id = $2 AND phone = $3`
	// qUpdateVerificationCounters writes every mutable field but status
	// and expires_at, for the common saves (a wrong code) that change
	// neither: it leaves the indexes on those alone, where SQLite would
	// rewrite their pages on any assignment.
	qUpdateVerificationCounters = `UPDATE verifications SET country = $4, channel = $5, subject = $7,
	amount = $8, payee = $9, locale = $10, send_count = $11, attempts = $12, max_attempts = $13,
	code_hash = $14, created_at = $16, updated_at = $17
	WHERE id = $1 AND service_id = $2 AND phone = $3 AND status = $6 AND expires_at = $15`
	// qSwapVerification is qUpdateVerification that writes only over the
	// verification exactly as it was read: $18–$31 are its columns country
	// to updated_at (the arguments 4–17 of the read), so a verification
	// that anyone changed meanwhile is left alone (0 rows).
	qSwapVerification   = qUpdateVerification + ` AND ` + verificationMutable + ` = ` + verificationWas
	verificationMutable = `(country, channel, status, subject, amount, payee, locale, send_count, attempts,
	max_attempts, code_hash, expires_at, created_at, updated_at)`
	verificationWas      = `($18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)`
	qExpireVerifications = `UPDATE verifications SET status = 'expired', updated_at = $1
	WHERE status = 'pending' AND expires_at <= $1`

	// qLockNumber creates or touches the number's row and returns it. The
	// no-op update makes PostgreSQL lock the row for the rest of the
	// transaction, which serialises every start for the number.
	qLockNumber = `INSERT INTO numbers (service_id, phone, latest_id, sends) VALUES ($1, $2, NULL, '')
	ON CONFLICT (service_id, phone) DO UPDATE SET phone = excluded.phone
	RETURNING latest_id, sends`
	qUpdateNumber = `UPDATE numbers SET latest_id = $3, sends = $4 WHERE service_id = $1 AND phone = $2`

	// qSelectStartRegistry reads, in one go, the registry entry of the
	// subject ($3) and those of every subject holding the phone ($2).
	// Two lookups, each on its own index: SQLite ran the OR as a scan of
	// the service's whole registry, a cost that grew with every approval.
	qSelectStartRegistry = `SELECT subject, phone, verification_id, verified_at FROM verified_phones
	WHERE service_id = $1 AND phone = $2
	UNION
	SELECT subject, phone, verification_id, verified_at FROM verified_phones
	WHERE service_id = $1 AND subject = $3
	ORDER BY 4, 1`
	qSelectVerifiedPhone = `SELECT subject, phone, verification_id, verified_at FROM verified_phones
	WHERE service_id = $1 AND subject = $2`
	qUpsertVerifiedPhone = `INSERT INTO verified_phones (service_id, subject, phone, verification_id, verified_at)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (service_id, subject) DO UPDATE SET phone = excluded.phone,
	verification_id = excluded.verification_id, verified_at = excluded.verified_at`

	apiKeyColumns       = `id, service_id, name, prefix, hash, scopes, created_at, last_used_at, revoked_at, allowed_ips`
	qInsertAPIKey       = `INSERT INTO api_keys (` + apiKeyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	qSelectAPIKeyByHash = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE hash = $1`
	qSelectAPIKeys      = `SELECT ` + apiKeyColumns + ` FROM api_keys ORDER BY created_at, id`
	// qRevokeAPIKey keeps the first revocation time of a key revoked twice.
	qRevokeAPIKey = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`
	// qTouchAPIKey writes last_used_at only when it is older than $3, so a
	// busy key costs one write per interval, whatever the node count.
	qTouchAPIKey = `UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`

	qSelectSigningKeys = `SELECT id, sealed, created_at, retired_at FROM signing_keys ORDER BY created_at, id`
	qCountSigningKeys  = `SELECT COUNT(*) FROM signing_keys`
	qInsertSigningKey  = `INSERT INTO signing_keys (id, sealed, created_at, retired_at) VALUES ($1, $2, $3, $4)`
	qRetireSigningKeys = `UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL`
	qPostgresXactLock  = `SELECT pg_advisory_xact_lock($1)`
	signingKeysLockID  = 0x5369676e4b657973 // "SignKeys"
)

// dialectQueries holds the queries whose text differs per dialect.
type dialectQueries struct {
	// lockVerification reads a verification by id and service, row-locked
	// on PostgreSQL.
	lockVerification string
	// lockLatestByPhone reads the newest verification of a number,
	// row-locked on PostgreSQL (the verification only, not the number, so
	// that it never waits on a start while holding the verification).
	lockLatestByPhone string
	// xactLock takes a transaction-scoped advisory lock named by $1 on
	// PostgreSQL; it is empty on SQLite, where a write transaction is
	// exclusive already.
	xactLock string
	// claimMessages claims due outbox messages: with FOR UPDATE SKIP LOCKED
	// on PostgreSQL.
	claimMessages string
}

func newDialectQueries(dialect string) dialectQueries {
	if dialect == DialectPostgres {
		return dialectQueries{
			lockVerification:  qSelectVerification + ` FOR UPDATE`,
			lockLatestByPhone: qSelectLatestByPhone + ` FOR UPDATE OF v`,
			xactLock:          qPostgresXactLock,
			claimMessages:     qClaimMessagesHead + ` FOR UPDATE SKIP LOCKED` + qClaimMessagesTail,
		}
	}
	return dialectQueries{
		lockVerification:  qSelectVerification,
		lockLatestByPhone: qSelectLatestByPhone,
		claimMessages:     qClaimMessagesSQLite,
	}
}

// writeQueries returns the queries prepared once on the SQLite writer
// connection.
func writeQueries() []string {
	return append([]string{
		qInsertService, qUpdateService,
		qSelectVerification, qSelectLatestByPhone, qInsertVerification, qUpdateVerification, qUpdateVerificationCounters,
		qExpireVerificationsRe,
		qLockNumber, qUpdateNumber, qSelectStartRegistry, qUpsertVerifiedPhone,
		qInsertAPIKey, qRevokeAPIKey, qTouchAPIKey,
		qSelectSigningKeys, qCountSigningKeys, qInsertSigningKey, qRetireSigningKeys,
		qInsertMessage, qClaimMessagesSQLite, qRetryMessage, qFinishMessage, qReceiptMessage + qReceiptMessageReturning,
		qInsertAttempt,
		qInsertFraudStart, qCountIPConversion,
	}, fraudCountShapes()...)
}

// readQueries returns the queries prepared once per connection of the
// SQLite reader pool.
func readQueries() []string {
	return []string{
		qSelectService, qSelectDefaultService, qSelectServices,
		qSelectVerification, qSelectVerifiedPhone,
		qSelectAPIKeyByHash, qSelectAPIKeys,
		qSelectSigningKeys,
		qSelectMessages,
		qSelectFeatures, qServiceExists,
		qFraudState, qFraudBlocks,
	}
}
