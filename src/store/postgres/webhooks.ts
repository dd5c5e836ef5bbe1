import type { WebhookChange, WebhookPatch, WebhookStore } from '../../app/store.js'
import { matchesEventType, type Webhook, type WebhookDisabledReason } from '../../domain/webhook.js'
import { WEBHOOK_COLUMNS, webhookFromRow, type WebhookMatch, type WebhookRow } from '../rows.js'
import type { PgContext } from './context.js'
import type { Tx } from './database.js'

function toParams(w: Webhook): unknown[] {
  return [
    w.webhook_id,
    w.workspace_id,
    w.url,
    JSON.stringify(w.event_types),
    w.secret,
    w.previous_secret,
    w.previous_secret_expires_at,
    w.enabled,
    w.disabled_reason,
    w.disabled_at,
    w.consecutive_failures,
    w.created_at,
    w.updated_at,
  ]
}

const HOLD = `UPDATE deliveries SET held = true, next_attempt_at = NULL, updated_at = ?
  WHERE webhook_id = ? AND status = 'pending' AND NOT held`

/** Webhooks, soft-deleted so the delivery history keeps its destination; holding and releasing happen here. */
export class PgWebhooks implements WebhookStore {
  /** Live webhooks per workspace, read by the event log inside its transaction. Dropped on every change. */
  private readonly cache = new Map<string, WebhookMatch[]>()

  constructor(private readonly ctx: PgContext) {}

  /** The webhooks of a workspace that receive `eventType`; runs inside the event's write transaction. */
  async matching(tx: Tx, workspaceId: string, eventType: string): Promise<WebhookMatch[]> {
    let all = this.cache.get(workspaceId)
    if (!all) {
      const rows = await tx.query<{ webhook_id: string; event_types: string; enabled: boolean }>(
        'SELECT webhook_id, event_types, enabled FROM webhooks WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY seq',
        [workspaceId],
      )
      all = rows.map((row) => ({
        webhook_id: row.webhook_id,
        event_types: JSON.parse(row.event_types) as string[],
        enabled: row.enabled,
      }))
      this.cache.set(workspaceId, all)
    }
    return all.filter((webhook) => matchesEventType(webhook.event_types, eventType))
  }

  async create(webhook: Webhook): Promise<void> {
    await this.write(webhook.workspace_id, (tx) =>
      tx.exec(
        `INSERT INTO webhooks (${WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        toParams(webhook),
      ),
    )
  }

  async get(workspaceId: string, webhookId: string): Promise<Webhook | undefined> {
    const rows = await this.ctx.db.query<WebhookRow>(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ? AND workspace_id = ? AND deleted_at IS NULL`,
      [webhookId, workspaceId],
    )
    return rows[0] && webhookFromRow(rows[0])
  }

  async list(workspaceId: string): Promise<Webhook[]> {
    const rows = await this.ctx.db.query<WebhookRow>(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY seq`,
      [workspaceId],
    )
    return rows.map(webhookFromRow)
  }

  private async load(tx: Tx, workspaceId: string, webhookId: string): Promise<Webhook | undefined> {
    const rows = await tx.query<WebhookRow>(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ? AND workspace_id = ? AND deleted_at IS NULL`,
      [webhookId, workspaceId],
    )
    return rows[0] && webhookFromRow(rows[0])
  }

  private async save(tx: Tx, w: Webhook): Promise<void> {
    const [id, , url, types, secret, prev, prevExp, enabled, reason, disabledAt, failures, , updatedAt] = toParams(w)
    tx.write(
      `UPDATE webhooks SET url = ?, event_types = ?, secret = ?, previous_secret = ?, previous_secret_expires_at = ?,
         enabled = ?, disabled_reason = ?, disabled_at = ?, consecutive_failures = ?, updated_at = ? WHERE webhook_id = ?`,
      [url, types, secret, prev, prevExp, enabled, reason, disabledAt, failures, updatedAt, id],
    )
  }

  update(workspaceId: string, webhookId: string, patch: WebhookPatch, at: string): Promise<WebhookChange | undefined> {
    return this.write(workspaceId, async (tx) => {
      const before = await this.load(tx, workspaceId, webhookId)
      if (!before) return undefined
      const enabled = patch.enabled ?? before.enabled
      const released = enabled && !before.enabled
      const held = !enabled && before.enabled
      const webhook: Webhook = {
        ...before,
        url: patch.url ?? before.url,
        event_types: patch.event_types ?? before.event_types,
        enabled,
        updated_at: at,
        ...(released ? { disabled_reason: null, disabled_at: null, consecutive_failures: 0 } : {}),
        ...(held ? { disabled_reason: 'manual' as const, disabled_at: at } : {}),
      }
      await this.save(tx, webhook)
      if (released)
        tx.write(
          `UPDATE deliveries SET held = false, next_attempt_at = ?, updated_at = ?
           WHERE webhook_id = ? AND status = 'pending' AND held`,
          [at, at, webhookId],
        )
      if (held) tx.write(HOLD, [at, webhookId])
      return { webhook, released, held }
    })
  }

  rotateSecret(
    workspaceId: string,
    webhookId: string,
    secret: string,
    previousExpiresAt: string,
    at: string,
  ): Promise<Webhook | undefined> {
    return this.write(workspaceId, async (tx) => {
      const before = await this.load(tx, workspaceId, webhookId)
      if (!before) return undefined
      const webhook: Webhook = {
        ...before,
        secret,
        previous_secret: before.secret,
        previous_secret_expires_at: previousExpiresAt,
        updated_at: at,
      }
      await this.save(tx, webhook)
      return webhook
    })
  }

  delete(workspaceId: string, webhookId: string, at: string): Promise<boolean> {
    return this.write(workspaceId, async (tx) => {
      const changed = await tx.exec(
        `UPDATE webhooks SET deleted_at = ?, updated_at = ?, enabled = false
         WHERE webhook_id = ? AND workspace_id = ? AND deleted_at IS NULL`,
        [at, at, webhookId, workspaceId],
      )
      if (changed === 0) return false
      tx.write(
        `UPDATE deliveries SET status = 'cancelled', held = false, next_attempt_at = NULL, updated_at = ?
         WHERE webhook_id = ? AND status = 'pending'`,
        [at, webhookId],
      )
      return true
    })
  }

  /** After an attempt, inside its transaction: the failure streak, and a disable that holds what is pending. */
  async applyAttemptOutcome(
    tx: Tx,
    workspaceId: string,
    webhookId: string,
    failures: { before: number; after: number },
    disable: WebhookDisabledReason | null,
    at: string,
  ): Promise<void> {
    if (failures.after !== failures.before)
      tx.write('UPDATE webhooks SET consecutive_failures = ? WHERE webhook_id = ?', [failures.after, webhookId])
    if (disable === null) return
    tx.write(
      'UPDATE webhooks SET enabled = false, disabled_reason = ?, disabled_at = ?, updated_at = ? WHERE webhook_id = ?',
      [disable, at, at, webhookId],
    )
    tx.write(HOLD, [at, webhookId])
    this.cache.delete(workspaceId)
  }

  forget(workspaceId: string): void {
    this.cache.delete(workspaceId)
  }

  /** A write that changes webhooks: the cache is dropped inside the transaction and again after it. */
  private async write<T>(workspaceId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    try {
      return await this.ctx.db.writes.run((tx) => {
        this.cache.delete(workspaceId)
        return fn(tx)
      })
    } finally {
      this.cache.delete(workspaceId)
    }
  }
}
