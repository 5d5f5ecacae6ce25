// The rcptguard schema as a list of migration steps, and the open sequence that applies them.
#include "store/schema.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

namespace rcptguard::store {
namespace {

// Identifies a file as ours in the SQLite header ("rcpg"), so a foreign database given by
// mistake is refused instead of having our tables added to it.
constexpr int application_id = 0x72637067;

struct migration {
  int version;
  const char* sql;
};

// Times are stored as integer Unix seconds (what the daemon joins and compares on); each has a
// VIRTUAL generated *_utc twin in ISO-8601, which costs no space and reads well in sqlite3.
// Counts per recipient are keyed by the normalised recipient the engine uses.
constexpr const char* schema_v1 = R"sql(
CREATE TABLE recipient_hourly (
  recipient        TEXT    NOT NULL,
  hour_start       INTEGER NOT NULL,            -- Unix seconds, multiple of 3600
  accepted         INTEGER NOT NULL DEFAULT 0,  -- messages that reached END-OF-MESSAGE
  attempted        INTEGER NOT NULL DEFAULT 0,  -- all RCPTs counted, accepted ones included
  distinct_senders INTEGER NOT NULL DEFAULT 0,  -- exact, see recipient_hour_sender
  bytes            INTEGER NOT NULL DEFAULT 0,  -- sum of accepted message sizes
  hour_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', hour_start, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (recipient, hour_start)
) WITHOUT ROWID;
CREATE INDEX recipient_hourly_by_hour ON recipient_hourly (hour_start);

-- The last ~25 hours at minute resolution, so the sliding windows survive a restart.
CREATE TABLE recipient_minute (
  recipient    TEXT    NOT NULL,
  minute_start INTEGER NOT NULL,                -- Unix seconds, multiple of 60
  accepted     INTEGER NOT NULL DEFAULT 0,
  attempted    INTEGER NOT NULL DEFAULT 0,
  minute_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', minute_start, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (recipient, minute_start)
) WITHOUT ROWID;
CREATE INDEX recipient_minute_by_minute ON recipient_minute (minute_start);

-- Which senders were already counted in recipient_hourly.distinct_senders for an hour. Kept for
-- two hours only; it makes the count exact across batches, restarts and replayed logs.
CREATE TABLE recipient_hour_sender (
  recipient  TEXT    NOT NULL,
  hour_start INTEGER NOT NULL,
  sender     TEXT    NOT NULL,                  -- '' is the null sender <>
  PRIMARY KEY (recipient, hour_start, sender)
) WITHOUT ROWID;
CREATE INDEX recipient_hour_sender_by_hour ON recipient_hour_sender (hour_start);

-- Sender -> recipient history from accepted mail: these senders are not deferred in a flood.
CREATE TABLE correspondent (
  recipient  TEXT    NOT NULL,
  sender     TEXT    NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  messages   INTEGER NOT NULL DEFAULT 0,
  first_seen_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', first_seen, 'unixepoch')) VIRTUAL,
  last_seen_utc  TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', last_seen, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (recipient, sender)
) WITHOUT ROWID;
CREATE INDEX correspondent_by_last_seen ON correspondent (last_seen);

-- Every non-DUNNO verdict as answered to Postfix (or, for replayed logs, as it would have been).
CREATE TABLE verdict (
  id          INTEGER PRIMARY KEY,
  at          INTEGER NOT NULL,
  recipient   TEXT    NOT NULL,
  sender      TEXT    NOT NULL,
  client      TEXT    NOT NULL,
  level       TEXT    NOT NULL,                 -- 'warn' or 'defer' (DUNNO is not recorded)
  score       REAL    NOT NULL,
  action_text TEXT    NOT NULL,                 -- exactly what followed "action="
  source      TEXT    NOT NULL,                 -- 'policy' or 'log'
  at_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', at, 'unixepoch')) VIRTUAL
);
CREATE INDEX verdict_by_recipient ON verdict (recipient, at);
CREATE INDEX verdict_by_at ON verdict (at);

CREATE TABLE verdict_reason (
  verdict_id INTEGER NOT NULL REFERENCES verdict (id) ON DELETE CASCADE,
  ordinal    INTEGER NOT NULL,                  -- order the engine listed the reasons in
  name       TEXT    NOT NULL,
  weight     REAL    NOT NULL,
  observed   REAL    NOT NULL,
  baseline   REAL    NOT NULL,
  detail     TEXT    NOT NULL,
  PRIMARY KEY (verdict_id, ordinal)
) WITHOUT ROWID;

-- One row per alert episode; the engine re-sends it at each new peak and when it ends.
CREATE TABLE episode (
  id            INTEGER PRIMARY KEY,
  recipient     TEXT    NOT NULL,
  started       INTEGER NOT NULL,
  updated       INTEGER NOT NULL,
  ended         INTEGER NOT NULL DEFAULT 0,     -- 0 open, 1 closed
  ended_at      INTEGER,                        -- NULL while open
  peak_level    TEXT    NOT NULL,
  peak_score    REAL    NOT NULL,
  peak_window   TEXT    NOT NULL,
  peak_observed REAL    NOT NULL,
  peak_baseline REAL    NOT NULL,
  summary       TEXT    NOT NULL,
  source        TEXT    NOT NULL,
  started_utc  TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', started, 'unixepoch')) VIRTUAL,
  updated_utc  TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', updated, 'unixepoch')) VIRTUAL,
  ended_at_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', ended_at, 'unixepoch')) VIRTUAL,
  UNIQUE (recipient, started)
);
CREATE INDEX episode_open ON episode (started) WHERE ended = 0;
CREATE INDEX episode_by_started ON episode (started);
CREATE INDEX episode_by_updated ON episode (updated);

CREATE VIEW v_alerts AS
SELECT e.id,
       e.recipient,
       CASE e.ended WHEN 1 THEN 'closed' ELSE 'open' END AS state,
       e.started_utc,
       e.updated_utc,
       e.ended_at_utc,
       COALESCE(e.ended_at, e.updated) - e.started AS duration_s,
       printf('%dh%02dm', (COALESCE(e.ended_at, e.updated) - e.started) / 3600,
              (COALESCE(e.ended_at, e.updated) - e.started) % 3600 / 60) AS duration,
       e.peak_level,
       e.peak_score,
       e.peak_window,
       e.peak_observed,
       e.peak_baseline,
       e.summary,
       (SELECT count(*) FROM verdict v
         WHERE v.recipient = e.recipient
           AND v.at BETWEEN e.started AND COALESCE(e.ended_at, e.updated)) AS verdicts,
       e.source,
       e.started,
       e.updated,
       e.ended_at
  FROM episode e;

-- Reasons come out in ordinal order because verdict_reason is clustered on (verdict_id, ordinal).
CREATE VIEW v_verdicts AS
SELECT v.id,
       v.at_utc,
       v.recipient,
       v.sender,
       v.client,
       v.level,
       v.score,
       v.action_text,
       (SELECT group_concat(r.name || '=' || printf('%.2f', r.weight) ||
                            CASE WHEN r.detail <> '' THEN ' (' || r.detail || ')' ELSE '' END, '; ')
          FROM verdict_reason r WHERE r.verdict_id = v.id) AS reasons,
       v.source,
       v.at
  FROM verdict v;

-- The 24 hours up to the newest hour recorded (so a copied or stale database still answers),
-- or up to now when there is no data at all.
CREATE VIEW v_top_recipients_24h AS
WITH newest AS (
  SELECT COALESCE(max(hour_start), CAST(strftime('%s', 'now') AS INTEGER) / 3600 * 3600) AS hour_start
    FROM recipient_hourly
)
SELECT h.recipient,
       sum(h.accepted) AS accepted,
       sum(h.attempted) AS attempted,
       sum(h.bytes) AS bytes,
       max(h.distinct_senders) AS peak_hourly_senders,
       count(*) AS active_hours,
       strftime('%Y-%m-%dT%H:%M:%SZ', newest.hour_start - 82800, 'unixepoch') AS window_start_utc
  FROM recipient_hourly h, newest
 WHERE h.hour_start > newest.hour_start - 86400
 GROUP BY h.recipient
 ORDER BY accepted DESC, h.recipient;

CREATE VIEW v_recipient_hourly AS
SELECT recipient,
       hour_utc,
       CAST(strftime('%w', hour_start, 'unixepoch') AS INTEGER) AS weekday,  -- 0 = Sunday
       CAST(strftime('%H', hour_start, 'unixepoch') AS INTEGER) AS hour_of_day,
       accepted,
       attempted,
       distinct_senders,
       bytes,
       hour_start
  FROM recipient_hourly;
)sql";

// v2: monitor-mode verdicts are told apart from enforced ones. In monitor mode a verdict row
// says level 'defer' (what enforce mode would have answered) while action_text is the WARN that
// was actually sent; monitor_only = 1 marks that. Rows written before v2 read as 0.
constexpr const char* schema_v2 = R"sql(
ALTER TABLE verdict ADD COLUMN monitor_only INTEGER NOT NULL DEFAULT 0;

DROP VIEW v_verdicts;
CREATE VIEW v_verdicts AS
SELECT v.id,
       v.at_utc,
       v.recipient,
       v.sender,
       v.client,
       v.level,
       v.monitor_only,
       v.score,
       v.action_text,
       (SELECT group_concat(r.name || '=' || printf('%.2f', r.weight) ||
                            CASE WHEN r.detail <> '' THEN ' (' || r.detail || ')' ELSE '' END, '; ')
          FROM verdict_reason r WHERE r.verdict_id = v.id) AS reasons,
       v.source,
       v.at
  FROM verdict v;
)sql";

// v3: where `rcptguard ingest --follow` is in each followed log, so a restart neither skips
// nor re-counts lines. The file is known by device and inode (a rotated file keeps them under
// its new name); offset is the byte after the last line whose records were stored.
constexpr const char* schema_v3 = R"sql(
CREATE TABLE ingest_position (
  path    TEXT    NOT NULL PRIMARY KEY,
  device  INTEGER NOT NULL,
  inode   INTEGER NOT NULL,
  offset  INTEGER NOT NULL,
  updated INTEGER NOT NULL,                     -- Unix seconds
  updated_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', updated, 'unixepoch')) VIRTUAL
) WITHOUT ROWID;
)sql";

// v4: the spool scanner. Where each mailbox was read to (so a restart does not rescan), the
// messages and attachments it found, and the repeated-attachment evidence it derived. Every row
// has both times: when the mail was stored (from our Received header) and when it was scanned,
// so review can show the skew. Joins with the policy tables on recipient and time.
constexpr const char* schema_v4 = R"sql(
CREATE TABLE spool_file (
  mailbox       TEXT    NOT NULL,               -- mbox file or Maildir folder path
  kind          TEXT    NOT NULL,               -- 'mbox' or 'maildir'
  device        INTEGER NOT NULL,
  inode         INTEGER NOT NULL,               -- mbox: the file; Maildir: one message file
  size          INTEGER NOT NULL,
  offset        INTEGER NOT NULL,               -- mbox: end of the last complete message read
  prefix_length INTEGER NOT NULL DEFAULT 0,     -- bytes at 0 whose sha256 identifies the file
  prefix_sha256 TEXT    NOT NULL DEFAULT '',
  anchor_length INTEGER NOT NULL DEFAULT 0,     -- bytes just before offset, likewise
  anchor_sha256 TEXT    NOT NULL DEFAULT '',
  scanned_at    INTEGER NOT NULL,
  scanned_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', scanned_at, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (mailbox, inode)
) WITHOUT ROWID;

CREATE TABLE spool_message (
  id         INTEGER PRIMARY KEY,
  mailbox    TEXT    NOT NULL,
  stored_at  INTEGER NOT NULL,                  -- first Received, else From_ line / mtime / Date
  scanned_at INTEGER NOT NULL,
  bytes      INTEGER NOT NULL,
  origin     INTEGER NOT NULL DEFAULT 0,        -- Maildir: inode of the message file
  stored_utc  TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', stored_at, 'unixepoch')) VIRTUAL,
  scanned_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', scanned_at, 'unixepoch')) VIRTUAL
);
CREATE INDEX spool_message_by_mailbox ON spool_message (mailbox, stored_at);
CREATE INDEX spool_message_by_stored ON spool_message (stored_at);

CREATE TABLE spool_attachment (
  id           INTEGER PRIMARY KEY,
  mailbox      TEXT    NOT NULL,
  recipient    TEXT    NOT NULL,
  sha256       TEXT    NOT NULL,                -- hex, of the decoded content
  filename     TEXT    NOT NULL,
  content_type TEXT    NOT NULL,
  size         INTEGER NOT NULL,
  message_id   TEXT    NOT NULL,
  stored_at    INTEGER NOT NULL,
  scanned_at   INTEGER NOT NULL,
  origin       INTEGER NOT NULL DEFAULT 0,
  stored_utc  TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', stored_at, 'unixepoch')) VIRTUAL,
  scanned_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', scanned_at, 'unixepoch')) VIRTUAL
);
CREATE INDEX spool_attachment_by_recipient ON spool_attachment (recipient, stored_at);
CREATE INDEX spool_attachment_by_mailbox ON spool_attachment (mailbox, stored_at);
CREATE INDEX spool_attachment_by_sha256 ON spool_attachment (sha256);
CREATE INDEX spool_attachment_by_stored ON spool_attachment (stored_at);

-- One row per recipient, hash and first copy in the window; later scans update it.
CREATE TABLE spool_evidence (
  id           INTEGER PRIMARY KEY,
  recipient    TEXT    NOT NULL,
  mailbox      TEXT    NOT NULL,
  sha256       TEXT    NOT NULL,
  repeats      INTEGER NOT NULL,
  size         INTEGER NOT NULL,
  filenames    TEXT    NOT NULL,                -- examples, '; '-separated
  window_start INTEGER NOT NULL,                -- first copy stored
  window_end   INTEGER NOT NULL,                -- last copy stored
  scanned_at   INTEGER NOT NULL,                -- the scan that last saw it
  window_start_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', window_start, 'unixepoch')) VIRTUAL,
  window_end_utc   TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', window_end, 'unixepoch')) VIRTUAL,
  scanned_utc      TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', scanned_at, 'unixepoch')) VIRTUAL,
  UNIQUE (recipient, sha256, window_start)
);
CREATE INDEX spool_evidence_by_recipient ON spool_evidence (recipient, scanned_at);
CREATE INDEX spool_evidence_by_scanned ON spool_evidence (scanned_at);

CREATE VIEW v_spool_evidence AS
SELECT e.id,
       e.recipient,
       substr(e.sha256, 1, 12) AS sha256_prefix,
       e.repeats,
       e.size,
       e.filenames,
       e.window_start_utc AS first_stored_utc,
       e.window_end_utc AS last_stored_utc,
       e.window_end - e.window_start AS window_s,
       e.scanned_utc,
       e.scanned_at - e.window_end AS scan_lag_s,   -- stored -> scanned skew
       e.mailbox,
       e.sha256,
       e.window_start,
       e.window_end,
       e.scanned_at
  FROM spool_evidence e;
)sql";

// v5: time-first keys for the two append-mostly tables. Every batch writes rows of the current
// minute and hour for recipients spread all over the key space; keyed by time first, those rows
// go to the right-hand edge of the B-tree (a few hot pages) instead of one page per recipient,
// and the time range reads (start-up load of the last 24 h, pruning) become key range scans, so
// the separate time indexes go. Point lookups always give the full key. recipient_hourly stays
// recipient-first: the baseline history is read per recipient, in (recipient, hour) order.
// The tables are rebuilt (create, copy, drop, rename) in this step's one transaction.
constexpr const char* schema_v5 = R"sql(
CREATE TABLE recipient_minute_v5 (
  recipient    TEXT    NOT NULL,
  minute_start INTEGER NOT NULL,                -- Unix seconds, multiple of 60
  accepted     INTEGER NOT NULL DEFAULT 0,
  attempted    INTEGER NOT NULL DEFAULT 0,
  minute_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', minute_start, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (minute_start, recipient)
) WITHOUT ROWID;
INSERT INTO recipient_minute_v5 (recipient, minute_start, accepted, attempted)
  SELECT recipient, minute_start, accepted, attempted FROM recipient_minute
   ORDER BY minute_start, recipient;
DROP TABLE recipient_minute;                    -- with recipient_minute_by_minute
ALTER TABLE recipient_minute_v5 RENAME TO recipient_minute;

CREATE TABLE recipient_hour_sender_v5 (
  recipient  TEXT    NOT NULL,
  hour_start INTEGER NOT NULL,
  sender     TEXT    NOT NULL,                  -- '' is the null sender <>
  PRIMARY KEY (hour_start, recipient, sender)
) WITHOUT ROWID;
INSERT INTO recipient_hour_sender_v5 (recipient, hour_start, sender)
  SELECT recipient, hour_start, sender FROM recipient_hour_sender
   ORDER BY hour_start, recipient, sender;
DROP TABLE recipient_hour_sender;               -- with recipient_hour_sender_by_hour
ALTER TABLE recipient_hour_sender_v5 RENAME TO recipient_hour_sender;
)sql";

// v6: verdicts are kept at the rate an analyst reads them. A flood answers thousands of flagged
// requests with one story; each used to cost a verdict row with its action text and about three
// reason rows. Now the story (score, reasons with their numbers, the action text) is an
// `explanation`, stored when it changes: an episode's first verdict, each escalation or new
// peak, each change of the set of reasons. Each flagged request is a compact `flagged` row of
// interned ids, the second it was answered and a code, clustered by recipient so "who was
// deferred during bob's episode" is one key range; identical rows within a flush add up in
// `requests`. Recipients are interned in `name` (unique: review looks them up by text); senders
// and clients in `party` without an index on the text, since a flood's distinct senders would
// otherwise be stored twice: the writer remembers the ids it gave, so the same text may appear
// under several ids after a restart, which a join by id does not mind. The explanation in force for
// a flagged row is the recipient's latest one at or before it (v_verdicts joins them).
// `flagged_span` remembers each recipient's oldest row, so pruning finds old rows without an index
// on time. Existing verdicts become explanations (one each, ids kept) and flagged rows; nothing of
// the history is lost.
constexpr const char* schema_v6 = R"sql(
-- The correspondents' index on last_seen was as large as the table (a WITHOUT ROWID index
-- repeats the two addresses); pruning now sweeps the table in key order and the start-up load
-- sorts, so it goes.
DROP INDEX correspondent_by_last_seen;

CREATE TABLE name (
  id   INTEGER PRIMARY KEY,
  text TEXT    NOT NULL UNIQUE                  -- a normalised recipient address
);

CREATE TABLE party (
  id   INTEGER PRIMARY KEY,
  text TEXT    NOT NULL                         -- a sender ('' the null sender) or a client
);

CREATE TABLE explanation (
  id           INTEGER PRIMARY KEY,
  at           INTEGER NOT NULL,
  recipient    TEXT    NOT NULL,
  sender       TEXT    NOT NULL,                -- of the request that changed the story
  client       TEXT    NOT NULL,
  level        TEXT    NOT NULL,                -- 'warn' or 'defer'
  monitor_only INTEGER NOT NULL DEFAULT 0,
  score        REAL    NOT NULL,
  action_text  TEXT    NOT NULL,                -- exactly what followed "action="
  source       TEXT    NOT NULL,                -- 'policy' or 'log'
  at_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', at, 'unixepoch')) VIRTUAL
);
CREATE INDEX explanation_by_recipient ON explanation (recipient, at);
CREATE INDEX explanation_by_at ON explanation (at);

CREATE TABLE explanation_reason (
  explanation_id INTEGER NOT NULL REFERENCES explanation (id) ON DELETE CASCADE,
  ordinal        INTEGER NOT NULL,              -- order the engine listed the reasons in
  name           TEXT    NOT NULL,
  weight         REAL    NOT NULL,
  observed       REAL    NOT NULL,
  baseline       REAL    NOT NULL,
  detail         TEXT    NOT NULL,
  PRIMARY KEY (explanation_id, ordinal)
) WITHOUT ROWID;

CREATE TABLE flagged (
  recipient INTEGER NOT NULL,                   -- name.id
  at        INTEGER NOT NULL,                   -- Unix seconds
  sender    INTEGER NOT NULL,                   -- party.id
  client    INTEGER NOT NULL,                   -- party.id
  code      INTEGER NOT NULL,                   -- 1 warn, 2 defer; +4 monitor only; +8 from a log (+16 flag header, v7)
  requests  INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (recipient, at, sender, client, code)
) WITHOUT ROWID;

CREATE TABLE flagged_span (
  recipient INTEGER PRIMARY KEY,                -- name.id
  first_at  INTEGER NOT NULL                    -- the oldest flagged row kept for it
);
CREATE INDEX flagged_span_by_first ON flagged_span (first_at);

INSERT INTO explanation (id, at, recipient, sender, client, level, monitor_only, score,
                         action_text, source)
  SELECT id, at, recipient, sender, client, level, monitor_only, score, action_text, source
    FROM verdict;
INSERT INTO explanation_reason (explanation_id, ordinal, name, weight, observed, baseline, detail)
  SELECT verdict_id, ordinal, name, weight, observed, baseline, detail FROM verdict_reason;
INSERT INTO name (text) SELECT DISTINCT recipient FROM verdict;
INSERT INTO party (text) SELECT sender FROM verdict UNION SELECT client FROM verdict;
CREATE INDEX party_by_text_for_migration ON party (text);
INSERT INTO flagged (recipient, at, sender, client, code, requests)
  SELECT r.id, v.at, s.id, c.id,
         CASE v.level WHEN 'defer' THEN 2 ELSE 1 END + 4 * (v.monitor_only <> 0)
           + CASE v.source WHEN 'log' THEN 8 ELSE 0 END,
         count(*)
    FROM verdict v
    JOIN name r ON r.text = v.recipient
    JOIN party s ON s.text = v.sender
    JOIN party c ON c.text = v.client
   GROUP BY 1, 2, 3, 4, 5;
DROP INDEX party_by_text_for_migration;
INSERT INTO flagged_span (recipient, first_at) SELECT recipient, min(at) FROM flagged GROUP BY 1;

DROP VIEW v_alerts;
DROP VIEW v_verdicts;
DROP TABLE verdict_reason;
DROP TABLE verdict;

CREATE VIEW v_alerts AS
SELECT e.id,
       e.recipient,
       CASE e.ended WHEN 1 THEN 'closed' ELSE 'open' END AS state,
       e.started_utc,
       e.updated_utc,
       e.ended_at_utc,
       COALESCE(e.ended_at, e.updated) - e.started AS duration_s,
       printf('%dh%02dm', (COALESCE(e.ended_at, e.updated) - e.started) / 3600,
              (COALESCE(e.ended_at, e.updated) - e.started) % 3600 / 60) AS duration,
       e.peak_level,
       e.peak_score,
       e.peak_window,
       e.peak_observed,
       e.peak_baseline,
       e.summary,
       (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
         WHERE f.recipient = (SELECT id FROM name WHERE text = e.recipient)
           AND f.at BETWEEN e.started AND COALESCE(e.ended_at, e.updated)) AS verdicts,
       e.source,
       e.started,
       e.updated,
       e.ended_at
  FROM episode e;

-- Reasons come out in ordinal order because explanation_reason is clustered on
-- (explanation_id, ordinal).
CREATE VIEW v_explanations AS
SELECT x.id,
       x.at_utc,
       x.recipient,
       x.level,
       x.monitor_only,
       x.score,
       x.action_text,
       (SELECT group_concat(r.name || '=' || printf('%.2f', r.weight) ||
                            CASE WHEN r.detail <> '' THEN ' (' || r.detail || ')' ELSE '' END, '; ')
          FROM explanation_reason r WHERE r.explanation_id = x.id) AS reasons,
       x.source,
       x.sender,
       x.client,
       x.at
  FROM explanation x;

-- One row per flagged request (identical ones of a second counted in `requests`), with the
-- explanation in force: its own when it is one, else the recipient's latest at or before it.
CREATE VIEW v_verdicts AS
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', f.at, 'unixepoch') AS at_utc,
       r.text AS recipient,
       s.text AS sender,
       c.text AS client,
       CASE f.code & 3 WHEN 2 THEN 'defer' ELSE 'warn' END AS level,
       (f.code & 4) <> 0 AS monitor_only,
       f.requests,
       x.score,
       x.action_text,
       x.reasons,
       CASE WHEN f.code & 8 THEN 'log' ELSE 'policy' END AS source,
       x.id AS explanation_id,
       f.at
  FROM flagged f
  JOIN name r ON r.id = f.recipient
  JOIN party s ON s.id = f.sender
  JOIN party c ON c.id = f.client
  LEFT JOIN v_explanations x
    ON x.id = COALESCE(
         (SELECT e.id FROM explanation e
           WHERE e.recipient = r.text AND e.at = f.at AND e.sender = s.text AND e.client = c.text
             AND e.level = CASE f.code & 3 WHEN 2 THEN 'defer' ELSE 'warn' END
           ORDER BY e.id DESC LIMIT 1),
         (SELECT e.id FROM explanation e
           WHERE e.recipient = r.text AND e.at <= f.at
           ORDER BY e.at DESC, e.id DESC LIMIT 1));
)sql";

// v7: what burst learning and poisoning resistance need per hour (the largest 1-minute and
// 10-minute volume, and whether the hour lay inside a trusted episode), and the flag action's
// verdicts told apart from deferrals (flagged.code + 16).
constexpr const char* schema_v7 = R"sql(
ALTER TABLE recipient_hourly ADD COLUMN peak_minute INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipient_hourly ADD COLUMN peak_ten_minutes INTEGER NOT NULL DEFAULT 0;
-- 1: counted inside an episode opened against the recipient's own baseline; never learned from.
ALTER TABLE recipient_hourly ADD COLUMN in_episode INTEGER NOT NULL DEFAULT 0;

DROP VIEW v_recipient_hourly;
CREATE VIEW v_recipient_hourly AS
SELECT recipient,
       hour_utc,
       CAST(strftime('%w', hour_start, 'unixepoch') AS INTEGER) AS weekday,  -- 0 = Sunday
       CAST(strftime('%H', hour_start, 'unixepoch') AS INTEGER) AS hour_of_day,
       accepted,
       attempted,
       distinct_senders,
       bytes,
       peak_minute,
       peak_ten_minutes,
       in_episode,
       hour_start
  FROM recipient_hourly;

DROP VIEW v_verdicts;
CREATE VIEW v_verdicts AS
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', f.at, 'unixepoch') AS at_utc,
       r.text AS recipient,
       s.text AS sender,
       c.text AS client,
       CASE f.code & 3 WHEN 2 THEN 'defer' ELSE 'warn' END AS level,
       (f.code & 4) <> 0 AS monitor_only,
       (f.code & 16) <> 0 AS header_flagged,
       f.requests,
       x.score,
       x.action_text,
       x.reasons,
       CASE WHEN f.code & 8 THEN 'log' ELSE 'policy' END AS source,
       x.id AS explanation_id,
       f.at
  FROM flagged f
  JOIN name r ON r.id = f.recipient
  JOIN party s ON s.id = f.sender
  JOIN party c ON c.id = f.client
  LEFT JOIN v_explanations x
    ON x.id = COALESCE(
         (SELECT e.id FROM explanation e
           WHERE e.recipient = r.text AND e.at = f.at AND e.sender = s.text AND e.client = c.text
             AND e.level = CASE f.code & 3 WHEN 2 THEN 'defer' ELSE 'warn' END
           ORDER BY e.id DESC LIMIT 1),
         (SELECT e.id FROM explanation e
           WHERE e.recipient = r.text AND e.at <= f.at
           ORDER BY e.at DESC, e.id DESC LIMIT 1));
)sql";

// v8: operator controls (`rcptguard allow|unallow|reset|release|status` through the daemon's
// control socket). operator_action is the audit log: one row per command and per refused caller,
// with the user the socket's peer credentials named (never what the request claimed).
// operator_allow holds the allow entries in force, so they survive a restart. episode.closed_by
// says why an episode ended, so review can tell a release by an operator from a cool-down.
constexpr const char* schema_v8 = R"sql(
CREATE TABLE operator_action (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,                     -- Unix seconds
  user    TEXT    NOT NULL,                     -- the caller's user name ('' if it has none)
  uid     INTEGER NOT NULL,                     -- the caller's uid (SO_PEERCRED)
  command TEXT    NOT NULL,                     -- allow, unallow, reset, release, status; '' if refused unread
  kind    TEXT    NOT NULL DEFAULT '',          -- 'recipient' or 'sender' (allow, unallow)
  address TEXT    NOT NULL DEFAULT '',          -- the normalised address acted on
  until   INTEGER,                              -- allow: when the entry ends; NULL for good
  reason  TEXT    NOT NULL DEFAULT '',          -- as the operator gave it
  result  TEXT    NOT NULL,                     -- 'ok', 'failed' (nothing changed) or 'refused'
  detail  TEXT    NOT NULL DEFAULT '',          -- what changed, or why not
  at_utc    TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', at, 'unixepoch')) VIRTUAL,
  until_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', until, 'unixepoch')) VIRTUAL
);
CREATE INDEX operator_action_by_at ON operator_action (at);
CREATE INDEX operator_action_by_address ON operator_action (address, at);

CREATE TABLE operator_allow (
  address    TEXT    NOT NULL,                  -- normalised, exact
  kind       TEXT    NOT NULL,                  -- 'recipient' or 'sender'
  until      INTEGER,                           -- Unix seconds; NULL for good
  created_at INTEGER NOT NULL,
  user       TEXT    NOT NULL,
  reason     TEXT    NOT NULL,
  until_utc   TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', until, 'unixepoch')) VIRTUAL,
  created_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (address, kind)
) WITHOUT ROWID;

-- 'cool_down', 'evicted', 'stale' (ended while the daemon was down) or 'operator' (released);
-- NULL while open, and for episodes closed before v8.
ALTER TABLE episode ADD COLUMN closed_by TEXT;

CREATE VIEW v_operator_actions AS
SELECT a.id,
       a.at_utc,
       a.user,
       a.uid,
       a.command,
       a.kind,
       a.address,
       CASE WHEN a.command = 'allow' AND a.result = 'ok'
            THEN COALESCE(a.until_utc, 'for good') END AS allowed_until,
       a.reason,
       a.result,
       a.detail,
       a.at,
       a.until
  FROM operator_action a;

DROP VIEW v_alerts;
CREATE VIEW v_alerts AS
SELECT e.id,
       e.recipient,
       CASE e.ended WHEN 1 THEN 'closed' ELSE 'open' END AS state,
       e.started_utc,
       e.updated_utc,
       e.ended_at_utc,
       COALESCE(e.ended_at, e.updated) - e.started AS duration_s,
       printf('%dh%02dm', (COALESCE(e.ended_at, e.updated) - e.started) / 3600,
              (COALESCE(e.ended_at, e.updated) - e.started) % 3600 / 60) AS duration,
       e.peak_level,
       e.peak_score,
       e.peak_window,
       e.peak_observed,
       e.peak_baseline,
       e.summary,
       (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
         WHERE f.recipient = (SELECT id FROM name WHERE text = e.recipient)
           AND f.at BETWEEN e.started AND COALESCE(e.ended_at, e.updated)) AS verdicts,
       e.source,
       e.started,
       e.updated,
       e.ended_at,
       e.closed_by
  FROM episode e;
)sql";

// v9: the cluster store (README, "Several MX hosts"). cluster_hourly keeps the other nodes' RCPTs
// per recipient and completed hour, as this node read them from Redis, beside its own
// recipient_hourly rows: the baselines learn the cluster's volume, not this node's share of it.
// episode.cluster_id is the flood's id across nodes; store_meta names the node.
constexpr const char* schema_v9 = R"sql(
CREATE TABLE cluster_hourly (
  recipient  TEXT    NOT NULL,
  hour_start INTEGER NOT NULL,                  -- Unix seconds, multiple of 3600
  attempted  INTEGER NOT NULL,                  -- the other nodes' RCPTs (largest value read)
  hour_utc TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', hour_start, 'unixepoch')) VIRTUAL,
  PRIMARY KEY (hour_start, recipient)
) WITHOUT ROWID;

-- The flood's id the nodes agreed on ("NODE:STARTED" of the first to open it); NULL alone.
ALTER TABLE episode ADD COLUMN cluster_id TEXT;

-- Which node wrote this database (cluster.node, or the host name): review over several nodes'
-- databases names each row's node.
CREATE TABLE store_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

DROP VIEW v_alerts;
CREATE VIEW v_alerts AS
SELECT e.id,
       e.recipient,
       CASE e.ended WHEN 1 THEN 'closed' ELSE 'open' END AS state,
       e.started_utc,
       e.updated_utc,
       e.ended_at_utc,
       COALESCE(e.ended_at, e.updated) - e.started AS duration_s,
       printf('%dh%02dm', (COALESCE(e.ended_at, e.updated) - e.started) / 3600,
              (COALESCE(e.ended_at, e.updated) - e.started) % 3600 / 60) AS duration,
       e.peak_level,
       e.peak_score,
       e.peak_window,
       e.peak_observed,
       e.peak_baseline,
       e.summary,
       (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
         WHERE f.recipient = (SELECT id FROM name WHERE text = e.recipient)
           AND f.at BETWEEN e.started AND COALESCE(e.ended_at, e.updated)) AS verdicts,
       e.source,
       e.started,
       e.updated,
       e.ended_at,
       e.closed_by,
       e.cluster_id
  FROM episode e;
)sql";

// Append-only: a released step is never edited, later changes (spool evidence, ingest
// positions) come as new steps.
constexpr std::array migrations{
    migration{1, schema_v1}, migration{2, schema_v2}, migration{3, schema_v3},
    migration{4, schema_v4}, migration{5, schema_v5}, migration{6, schema_v6},
    migration{7, schema_v7}, migration{8, schema_v8}, migration{9, schema_v9},
};
static_assert(migrations.size() == schema_version, "one migration step per schema version");

int pragma_int(SQLite::Database& db, const char* pragma) {
  return db.execAndGet(pragma).getInt();
}

// Refuses a file that another program created, before anything is written to it.
void check_ownership(SQLite::Database& db) {
  const int app_id = pragma_int(db, "PRAGMA application_id");
  if (app_id == application_id) return;
  if (app_id != 0) {
    throw schema_error("database " + db.getFilename() + " belongs to another application");
  }
  const int objects = db.execAndGet("SELECT count(*) FROM sqlite_schema").getInt();
  if (objects != 0) {
    throw schema_error("database " + db.getFilename() +
                       " is not an rcptguard database (it already has tables)");
  }
}

void check_not_newer(SQLite::Database& db, int version) {
  if (version > schema_version) {
    throw schema_error("database " + db.getFilename() + " has schema version " +
                       std::to_string(version) + ", newer than the " +
                       std::to_string(schema_version) + " this rcptguard knows; upgrade rcptguard");
  }
}

// Creates the file ourselves so its mode (inherited by -wal and -shm) is not left to the umask.
void create_private_file(const std::string& path, unsigned mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        static_cast<mode_t>(mode));
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno == EEXIST) return;  // opened below, and refused there if it is a symlink
  throw schema_error("cannot create database " + path + ": " +
                     std::generic_category().message(errno));
}

}  // namespace

int user_version(SQLite::Database& db) {
  return pragma_int(db, "PRAGMA user_version");
}

void migrate(SQLite::Database& db) {
  migrate_to(db, schema_version);
}

void migrate_to(SQLite::Database& db, int target_version) {
  // The common case, an up-to-date file, needs no write lock.
  const int found = user_version(db);
  check_not_newer(db, found);
  if (found >= target_version) return;
  for (const migration& step : migrations) {
    if (step.version > target_version) break;
    // IMMEDIATE takes the write lock before the version is read, so two processes opening a
    // fresh file cannot both apply the same step.
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    const int current = user_version(db);
    check_not_newer(db, current);
    if (current >= step.version) continue;  // tx rolls back an empty transaction
    if (current != step.version - 1) {
      throw schema_error("database " + db.getFilename() + " is at schema version " +
                         std::to_string(current) + ", expected " +
                         std::to_string(step.version - 1));
    }
    check_ownership(db);
    db.exec(step.sql);
    // PRAGMAs cannot take bound parameters; both values are compile-time integers.
    db.exec("PRAGMA application_id = " + std::to_string(application_id));
    db.exec("PRAGMA user_version = " + std::to_string(step.version));
    tx.commit();
  }
}

SQLite::Database open_read_write(const open_options& options) {
  create_private_file(options.path, options.file_mode);
  try {
    // NOMUTEX: every connection is owned by one thread, so SQLite's own locking is overhead.
    SQLite::Database db(
        options.path,
        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOFOLLOW | SQLite::OPEN_NOMUTEX,
        static_cast<int>(options.busy_timeout.count()));
    check_not_newer(db, user_version(db));
    // journal_mode cannot change inside a transaction, so it is set before migrating.
    const std::string mode = db.execAndGet("PRAGMA journal_mode = WAL").getString();
    if (mode != "wal") {
      throw schema_error("database " + options.path + " cannot use WAL (journal_mode=" + mode +
                         ")");
    }
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    // A checkpoint copies the WAL back but leaves the file at its high-water mark, which after
    // a long lock or a big catch-up transaction can be gigabytes for good. With a limit SQLite
    // cuts it back when the log restarts after a checkpoint. 64 MiB is above the ~40 MiB the
    // store lets the WAL grow between automatic checkpoints, so a normal cycle never truncates.
    constexpr std::int64_t wal_size_limit = std::int64_t{64} << 20;
    db.exec("PRAGMA journal_size_limit = " + std::to_string(wal_size_limit));
    migrate(db);
    return db;
  } catch (const SQLite::Exception& e) {
    if (e.getExtendedErrorCode() == SQLITE_CANTOPEN_SYMLINK) {
      throw schema_error("database " + options.path + " is a symbolic link; refusing it");
    }
    throw;
  }
}

SQLite::Database open_read_only(const std::string& path, std::chrono::milliseconds busy_timeout) {
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOFOLLOW | SQLite::OPEN_NOMUTEX,
                        static_cast<int>(busy_timeout.count()));
    const int version = user_version(db);
    check_not_newer(db, version);
    if (version < 1) throw schema_error("database " + path + " has no rcptguard schema yet");
    return db;
  } catch (const SQLite::Exception& e) {
    if (e.getExtendedErrorCode() == SQLITE_CANTOPEN_SYMLINK) {
      throw schema_error("database " + path + " is a symbolic link; refusing it");
    }
    throw;
  }
}

}  // namespace rcptguard::store
