import type { WebhookChange, WebhookPatch, WebhookStore } from '../../app/store.js'
import { matchesEventType, type Webhook, type WebhookDisabledReason } from '../../domain/webhook.js'
import { WEBHOOK_COLUMNS, webhookFromRow, type WebhookMatch, type WebhookRow } from '../rows.js'
import type { StoreContext } from './context.js'

function toParams(webhook: Webhook): Record<string, unknown> {
  return { ...webhook, event_types: JSON.stringify(webhook.event_types), enabled: webhook.enabled ? 1 : 0 }
}

/**
 * Webhooks, soft-deleted so the delivery history keeps its destination. Holding and releasing a webhook's
 * deliveries happens here, in the transaction that disables or enables it.
 */
export class SqliteWebhooks implements WebhookStore {
  private readonly stmts
  /** Live webhooks per workspace, read by the event log inside its transaction. Dropped on every change. */
  private readonly cache = new Map<string, WebhookMatch[]>()

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.db
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO webhooks (${WEBHOOK_COLUMNS}) VALUES (@webhook_id, @workspace_id, @url, @event_types, @secret, @previous_secret,
           @previous_secret_expires_at, @enabled, @disabled_reason, @disabled_at, @consecutive_failures, @created_at, @updated_at)`,
      ),
      update: db.prepare(
        `UPDATE webhooks SET url = @url, event_types = @event_types, secret = @secret, previous_secret = @previous_secret,
           previous_secret_expires_at = @previous_secret_expires_at, enabled = @enabled, disabled_reason = @disabled_reason,
           disabled_at = @disabled_at, consecutive_failures = @consecutive_failures, updated_at = @updated_at
         WHERE webhook_id = @webhook_id`,
      ),
      get: db.prepare<[string, string], WebhookRow>(
        `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ? AND workspace_id = ? AND deleted_at IS NULL`,
      ),
      list: db.prepare<[string], WebhookRow>(
        `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY seq`,
      ),
      matches: db.prepare<[string], { webhook_id: string; event_types: string; enabled: number }>(
        'SELECT webhook_id, event_types, enabled FROM webhooks WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY seq',
      ),
      softDelete: db.prepare(
        'UPDATE webhooks SET deleted_at = ?, updated_at = ?, enabled = 0 WHERE webhook_id = ? AND workspace_id = ? AND deleted_at IS NULL',
      ),
      setFailures: db.prepare('UPDATE webhooks SET consecutive_failures = ? WHERE webhook_id = ?'),
      disable: db.prepare(
        'UPDATE webhooks SET enabled = 0, disabled_reason = ?, disabled_at = ?, updated_at = ? WHERE webhook_id = ?',
      ),
      hold: db.prepare(
        "UPDATE deliveries SET held = 1, next_attempt_at = NULL, updated_at = ? WHERE webhook_id = ? AND status = 'pending' AND held = 0",
      ),
      release: db.prepare(
        "UPDATE deliveries SET held = 0, next_attempt_at = ?, updated_at = ? WHERE webhook_id = ? AND status = 'pending' AND held = 1",
      ),
      cancel: db.prepare(
        "UPDATE deliveries SET status = 'cancelled', held = 0, next_attempt_at = NULL, updated_at = ? WHERE webhook_id = ? AND status = 'pending'",
      ),
    }
  }

  /** The webhooks of a workspace that receive `eventType`; must run inside the event's write transaction. */
  matching(workspaceId: string, eventType: string): WebhookMatch[] {
    let all = this.cache.get(workspaceId)
    if (!all) {
      all = this.stmts.matches.all(workspaceId).map((row) => ({
        webhook_id: row.webhook_id,
        event_types: JSON.parse(row.event_types) as string[],
        enabled: row.enabled === 1,
      }))
      this.cache.set(workspaceId, all)
    }
    return all.filter((webhook) => matchesEventType(webhook.event_types, eventType))
  }

  async create(webhook: Webhook): Promise<void> {
    await this.write(webhook.workspace_id, () => this.stmts.insert.run(toParams(webhook)))
  }

  async get(workspaceId: string, webhookId: string): Promise<Webhook | undefined> {
    const row = this.stmts.get.get(webhookId, workspaceId)
    return row && webhookFromRow(row)
  }

  async list(workspaceId: string): Promise<Webhook[]> {
    return this.stmts.list.all(workspaceId).map(webhookFromRow)
  }

  update(workspaceId: string, webhookId: string, patch: WebhookPatch, at: string): Promise<WebhookChange | undefined> {
    return this.write(workspaceId, () => {
      const row = this.stmts.get.get(webhookId, workspaceId)
      if (!row) return undefined
      const before = webhookFromRow(row)
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
      this.stmts.update.run(toParams(webhook))
      if (released) this.stmts.release.run(at, at, webhookId)
      if (held) this.stmts.hold.run(at, webhookId)
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
    return this.write(workspaceId, () => {
      const row = this.stmts.get.get(webhookId, workspaceId)
      if (!row) return undefined
      const before = webhookFromRow(row)
      const webhook: Webhook = {
        ...before,
        secret,
        previous_secret: before.secret,
        previous_secret_expires_at: previousExpiresAt,
        updated_at: at,
      }
      this.stmts.update.run(toParams(webhook))
      return webhook
    })
  }

  delete(workspaceId: string, webhookId: string, at: string): Promise<boolean> {
    return this.write(workspaceId, () => {
      if (this.stmts.softDelete.run(at, at, webhookId, workspaceId).changes === 0) return false
      this.stmts.cancel.run(at, webhookId)
      return true
    })
  }

  /** After an attempt, inside its transaction: the failure streak, and a disable that holds what is pending. */
  applyAttemptOutcome(
    workspaceId: string,
    webhookId: string,
    failures: { before: number; after: number },
    disable: WebhookDisabledReason | null,
    at: string,
  ): void {
    if (failures.after !== failures.before) this.stmts.setFailures.run(failures.after, webhookId)
    if (disable === null) return
    this.stmts.disable.run(disable, at, at, webhookId)
    this.stmts.hold.run(at, webhookId)
    this.cache.delete(workspaceId)
  }

  /** Forgets the cached matches of a workspace whose webhooks may have changed (also after a rolled-back batch). */
  forget(workspaceId: string): void {
    this.cache.delete(workspaceId)
  }

  /**
   * A write that changes webhooks: the cache is dropped inside the transaction, so an event recorded later in the
   * same batch sees the change, and again after it, in case the batch rolled back.
   */
  private async write<T>(workspaceId: string, fn: () => T): Promise<T> {
    try {
      return await this.ctx.writes.run(() => {
        this.cache.delete(workspaceId)
        return fn()
      })
    } finally {
      this.cache.delete(workspaceId)
    }
  }
}
