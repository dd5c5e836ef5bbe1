// latchkey dashboard: vanilla DOM, no build step. The API key lives in this tab's sessionStorage and travels only in
// the Authorization header; the live stream is read with fetch (EventSource cannot send headers).

const STORE = 'latchkey.dashboard'
const $ = (id) => document.getElementById(id)

/** { key, workspaceId, workspaceName } once signed in. */
let session = load()
let state = { devices: [], attempts: [], webhooks: [] }
let controller
/** Retries asked for on this page: `${webhook_id}/${event_id}` → attempt id the row showed when asked. */
const retrying = new Map()

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) ?? 'null')
  } catch {
    return null
  }
}

function save() {
  if (session) sessionStorage.setItem(STORE, JSON.stringify(session))
  else sessionStorage.removeItem(STORE)
}

function headers(extra = {}) {
  const h = { authorization: `Bearer ${session.key}`, ...extra }
  if (session.workspaceId && session.admin) h['seam-workspace'] = session.workspaceId
  return h
}

async function api(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify(body ?? {}),
  })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw Object.assign(new Error(json.error?.message ?? `HTTP ${res.status}`), { status: res.status })
  return json
}

/** h('div', { class: 'x', onclick }, child, 'text', …): elements built from text, never from HTML strings. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else if (name === 'class') el.className = value
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

function ago(iso) {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`
  return new Date(iso).toLocaleString()
}

const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '')
const since = (from, to) => (from && to ? `+${Math.max(0, Date.parse(to) - Date.parse(from))} ms` : '')
const yesNo = (value, yes, no) => (value === null || value === undefined ? 'unknown' : value ? yes : no)

// ---- sign-in ----

function showSignin(message = '') {
  $('signin').hidden = false
  $('board').hidden = true
  $('signout').hidden = true
  $('live').hidden = true
  $('workspace').textContent = ''
  $('workspace-picker').hidden = true
  $('signin-error').textContent = message
}

async function signIn(key) {
  session = { key }
  // The admin key lists workspaces; a workspace key is refused there and reads its own workspace instead.
  const res = await fetch('/workspaces/list', { method: 'POST', headers: headers() })
  if (res.ok) {
    session.admin = true
    const { workspaces } = await res.json()
    pickWorkspace(workspaces)
    return
  }
  const { workspace } = await api('/workspaces/get')
  session = { key, workspaceId: workspace.workspace_id, workspaceName: workspace.name }
  save()
  start()
}

function pickWorkspace(workspaces) {
  const list = $('workspace-list')
  list.replaceChildren(
    ...workspaces.map((w) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              session = { ...session, workspaceId: w.workspace_id, workspaceName: w.name }
              save()
              start()
            },
          },
          w.name,
          ' ',
          h('span', { class: 'mono' }, w.workspace_id),
        ),
      ),
    ),
  )
  if (workspaces.length === 0) list.append(h('li', { class: 'empty' }, 'No workspaces yet.'))
  $('workspace-picker').hidden = false
}

function signOut(message) {
  controller?.abort()
  session = null
  save()
  state = { devices: [], attempts: [], webhooks: [] }
  showSignin(message)
}

// ---- live stream ----

function start() {
  $('signin').hidden = true
  $('board').hidden = false
  $('signout').hidden = false
  $('live').hidden = false
  $('workspace').textContent = session.workspaceName ?? session.workspaceId
  $('workspace').title = session.workspaceId
  renderAll()
  controller?.abort()
  controller = new AbortController()
  void follow(controller.signal)
}

function setLive(on, text) {
  $('live').classList.toggle('on', on)
  $('live').textContent = text
}

async function follow(signal) {
  let delay = 500
  while (!signal.aborted) {
    try {
      const res = await fetch('/dashboard/stream', { headers: headers(), signal, cache: 'no-store' })
      if (res.status === 401 || res.status === 404) return signOut('The key was refused. Sign in again.')
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
      setLive(true, 'live')
      delay = 500
      await read(res.body, signal)
    } catch (error) {
      if (signal.aborted) return
      console.warn('dashboard stream', error)
    }
    setLive(false, 'reconnecting')
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 10_000)
  }
}

async function read(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}))
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      dispatch(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
    }
  }
}

function dispatch(block) {
  let event = 'message'
  const data = []
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
  }
  if (!(event in state) || data.length === 0) return
  state[event] = JSON.parse(data.join('\n'))
  render(event)
}

// ---- rendering ----

function renderAll() {
  for (const view of Object.keys(state)) render(view)
}

function render(view) {
  if (view === 'devices' || view === 'attempts') renderDevices()
  if (view === 'attempts') renderAttempts()
  if (view === 'webhooks') renderWebhooks()
}

function latestAttemptOf(deviceId) {
  return state.attempts.find((a) => a.device_id === deviceId)
}

async function act(button, path, deviceId) {
  button.disabled = true
  try {
    await api(path, { device_id: deviceId, sync: false })
  } catch (error) {
    alert(error.message)
  } finally {
    button.disabled = false
  }
}

function renderDevices() {
  const list = $('devices')
  $('device-count').textContent = state.devices.length ? `(${state.devices.length})` : ''
  if (state.devices.length === 0) {
    list.replaceChildren(h('p', { class: 'empty' }, 'No devices yet. Create one with the API or the CLI.'))
    return
  }
  list.replaceChildren(
    ...state.devices.map((d) => {
      const last = latestAttemptOf(d.device_id)
      const battery = d.battery_level === null ? 'unknown' : `${Math.round(d.battery_level * 100)} %`
      return h(
        'article',
        { class: 'device', 'data-device-id': d.device_id },
        h('div', { class: 'name' }, h('span', { class: `dot${d.online ? ' on' : ''}`, 'aria-hidden': 'true' }), d.name),
        h(
          'div',
          { class: 'row' },
          h(
            'span',
            { class: `badge ${d.online ? 'online' : ''}`, 'data-field': 'online' },
            d.online ? 'online' : 'offline',
          ),
          h(
            'span',
            { class: `badge ${d.locked === null ? '' : d.locked ? 'locked' : 'unlocked'}`, 'data-field': 'locked' },
            yesNo(d.locked, 'locked', 'unlocked'),
          ),
          d.jammed ? h('span', { class: 'badge error' }, 'jammed') : null,
        ),
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'door'),
          h('dd', { 'data-field': 'door' }, yesNo(d.door_open, 'open', 'closed')),
          h('dt', {}, 'battery'),
          h('dd', { 'data-field': 'battery' }, battery),
          h('dt', {}, 'last seen'),
          h('dd', { 'data-field': 'last-seen', title: d.last_seen_at ?? '' }, ago(d.last_seen_at)),
        ),
        h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              'aria-label': `Lock ${d.name}`,
              disabled: !d.can_remotely_lock,
              onclick: (e) => act(e.currentTarget, '/locks/lock_door', d.device_id),
            },
            'Lock',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'small secondary',
              'aria-label': `Unlock ${d.name}`,
              disabled: !d.can_remotely_unlock,
              onclick: (e) => act(e.currentTarget, '/locks/unlock_door', d.device_id),
            },
            'Unlock',
          ),
          last
            ? h(
                'span',
                { class: 'row muted', 'data-field': 'last-action' },
                last.action_type === 'LOCK_DOOR' ? 'last lock' : 'last unlock',
                h('span', { class: `badge ${last.status}` }, last.status),
              )
            : null,
        ),
      )
    }),
  )
}

function deviceName(deviceId) {
  return state.devices.find((d) => d.device_id === deviceId)?.name ?? deviceId
}

function renderAttempts() {
  const list = $('attempts')
  if (state.attempts.length === 0) {
    list.replaceChildren(h('li', { class: 'empty' }, 'No attempts yet.'))
    return
  }
  list.replaceChildren(
    ...state.attempts.map((a) =>
      h(
        'li',
        { 'data-attempt-id': a.action_attempt_id },
        h(
          'div',
          { class: 'row' },
          h('span', { class: `badge ${a.status}`, 'data-field': 'status' }, a.status),
          h('b', {}, a.action_type === 'LOCK_DOOR' ? 'Lock' : 'Unlock'),
          deviceName(a.device_id),
          h('span', { class: 'grow' }),
          h('span', { class: 'mono' }, clock(a.created_at)),
        ),
        h(
          'div',
          { class: 'timeline' },
          h('span', {}, h('b', {}, 'created '), clock(a.created_at)),
          a.sent_at ? h('span', {}, h('b', {}, 'sent '), since(a.created_at, a.sent_at)) : null,
          a.accepted_at ? h('span', {}, h('b', {}, 'accepted '), since(a.created_at, a.accepted_at)) : null,
          a.completed_at ? h('span', {}, h('b', {}, 'settled '), since(a.created_at, a.completed_at)) : null,
        ),
        a.error ? h('div', { class: 'attempt-error' }, `${a.error.type}: ${a.error.message}`) : null,
      ),
    ),
  )
}

async function retry(button, webhook, delivery) {
  button.disabled = true
  button.textContent = 'Retrying…'
  retrying.set(`${webhook.webhook_id}/${delivery.event_id}`, delivery.attempt_id)
  try {
    await api('/dashboard/retry', { event_id: delivery.event_id, webhook_id: webhook.webhook_id })
  } catch (error) {
    retrying.delete(`${webhook.webhook_id}/${delivery.event_id}`)
    button.disabled = false
    button.textContent = 'Retry'
    alert(error.message)
  }
}

function renderWebhooks() {
  const list = $('webhooks')
  if (state.webhooks.length === 0) {
    list.replaceChildren(h('p', { class: 'empty' }, 'No webhooks.'))
    return
  }
  list.replaceChildren(
    ...state.webhooks.map((w) =>
      h(
        'div',
        { class: 'webhook', 'data-webhook-id': w.webhook_id },
        h(
          'div',
          { class: 'row' },
          h('span', { class: 'url grow' }, w.url),
          h(
            'span',
            { class: `badge ${w.enabled ? 'success' : 'error'}` },
            w.enabled ? 'enabled' : `disabled${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`,
          ),
        ),
        h('div', { class: 'mono' }, w.event_types.join(', ')),
        w.deliveries.length === 0
          ? h('p', { class: 'empty' }, 'No deliveries yet.')
          : h(
              'ol',
              { class: 'plain deliveries' },
              ...w.deliveries.map((d) => {
                const key = `${w.webhook_id}/${d.event_id}`
                const waiting = retrying.has(key) && retrying.get(key) === d.attempt_id
                if (retrying.has(key) && !waiting) retrying.delete(key)
                return h(
                  'li',
                  { class: 'delivery', 'data-event-id': d.event_id },
                  h(
                    'div',
                    { class: 'info' },
                    h(
                      'div',
                      { class: 'row' },
                      h('span', { class: `badge ${d.status}`, 'data-field': 'status' }, d.status),
                      h('b', { class: 'event-type' }, d.event_type),
                    ),
                    h(
                      'div',
                      { class: 'row muted' },
                      d.response_code === null ? 'no response' : `HTTP ${d.response_code}`,
                      h('span', {}, `#${d.attempt_number}${d.manual ? ' manual' : ''}`),
                      h('span', { class: 'mono' }, clock(d.attempted_at)),
                    ),
                    h('div', { class: 'mono' }, d.event_id),
                    d.error_message ? h('div', { class: 'attempt-error' }, d.error_message) : null,
                  ),
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'small secondary',
                      'aria-label': `Retry ${d.event_type} ${d.event_id}`,
                      disabled: waiting || !w.enabled,
                      onclick: (e) => retry(e.currentTarget, w, d),
                    },
                    waiting ? 'Retrying…' : 'Retry',
                  ),
                )
              }),
            ),
      ),
    ),
  )
}

// ---- boot ----

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = $('key')
  const key = input.value.trim()
  input.value = ''
  $('signin-error').textContent = ''
  signIn(key).catch((error) => signOut(error.status === 401 ? 'That key was refused.' : error.message))
})
$('signout').addEventListener('click', () => signOut(''))
// "last seen" ages without a new snapshot: only those texts change, so no button is replaced under a click.
setInterval(() => {
  for (const el of document.querySelectorAll('[data-field="last-seen"]')) el.textContent = ago(el.title || null)
}, 5000)

if (session?.workspaceId) start()
else showSignin()
