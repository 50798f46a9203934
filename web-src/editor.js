// The report page's live editor (#14): CodeMirror 6 bound to the report's Yjs document
// (y-codemirror.next), synced over y-websocket with our server (/api/postmortems/{id}/doc).
// Without this bundle, or without JavaScript, the page keeps its plain forms.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab } from 'y-codemirror.next'
import { EditorView, minimalSetup } from 'codemirror'
import { EditorState, Compartment } from '@codemirror/state'
import { markdown } from '@codemirror/lang-markdown'
import * as decoding from 'lib0/decoding'

const ACCESS_MESSAGE = 100 // the server's own: {"write": bool, "reason": str}
const COLOURS = ['#b3261e', '#1d6f42', '#0b57d0', '#8e24aa', '#b06000', '#00796b', '#c2185b', '#455a64']

function colourOf (name) {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  return COLOURS[hash % COLOURS.length]
}

function start (root) {
  const id = root.dataset.coedit
  const link = root.dataset.link || ''
  const name = root.dataset.name || 'someone'
  const csrf = root.dataset.csrf || ''
  const nonce = root.dataset.nonce || ''
  const doc = new Y.Doc()
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const provider = new WebsocketProvider(`${scheme}://${location.host}/api/postmortems`, `${encodeURIComponent(id)}/doc`, doc, {
    params: link ? { t: link } : {}
  })
  const colour = colourOf(name)
  provider.awareness.setLocalStateField('user', { name, color: colour, colorLight: colour + '33' })

  const banner = document.getElementById('coedit-banner')
  const presence = document.getElementById('coedit-presence')
  const status = document.getElementById('coedit-status')
  const views = []
  let writable = false

  function setWritable (write, reason) {
    writable = write
    for (const { view, readOnly } of views) {
      view.dispatch({ effects: readOnly.reconfigure([EditorState.readOnly.of(!write), EditorView.editable.of(write)]) })
    }
    banner.hidden = write
    banner.textContent = write ? '' : (reason || 'read-only')
    root.dataset.writable = String(write)
  }
  provider.messageHandlers[ACCESS_MESSAGE] = (_encoder, decoder) => {
    const access = JSON.parse(decoding.readVarString(decoder))
    setWritable(Boolean(access.write), access.reason)
  }
  provider.on('status', ({ status: state }) => { status.textContent = state; root.dataset.status = state })
  provider.on('sync', (synced) => { root.dataset.synced = String(synced) })
  provider.awareness.on('change', () => {
    const people = []
    provider.awareness.getStates().forEach((state) => { if (state.user) people.push(state.user) })
    presence.replaceChildren(...people.map((person) => {
      const badge = document.createElement('span')
      badge.className = 'person'
      badge.textContent = person.name
      badge.style.borderColor = person.color
      return badge
    }))
  })

  async function upload (view, file) {
    const body = new FormData()
    body.append('file', file, file.name || 'pasted.png')
    const url = `/postmortems/${encodeURIComponent(id)}/images/paste${link ? `?t=${encodeURIComponent(link)}` : ''}`
    const answer = await fetch(url, { method: 'POST', body, headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin' })
    const data = await answer.json().catch(() => ({}))
    if (!answer.ok) {
      banner.hidden = false
      banner.textContent = `image refused (${answer.status}): ${data.detail || answer.statusText}`
      return
    }
    const alt = (file.name || 'image').replace(/[\[\]]/g, '')
    const at = view.state.selection.main.head
    view.dispatch({ changes: { from: at, insert: `![${alt}](/postmortems/${encodeURIComponent(id)}/images/${data.id})` } })
  }
  function imagesOf (list) { return Array.from(list || []).filter((file) => file.type.startsWith('image/')) }

  for (const mount of root.querySelectorAll('[data-ytext]')) {
    const ytext = doc.getText(mount.dataset.ytext)
    const readOnly = new Compartment()
    const undoManager = new Y.UndoManager(ytext)
    const view = new EditorView({
      parent: mount,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          minimalSetup,
          markdown(),
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ 'aria-label': mount.dataset.label || '' }),
          nonce ? EditorView.cspNonce.of(nonce) : [],
          readOnly.of([EditorState.readOnly.of(true), EditorView.editable.of(false)]),
          yCollab(ytext, provider.awareness, { undoManager }),
          EditorView.domEventHandlers({
            paste (event, view) {
              const files = imagesOf(event.clipboardData && event.clipboardData.files)
              if (!files.length || !writable) return false
              event.preventDefault()
              files.forEach((file) => upload(view, file))
              return true
            },
            drop (event, view) {
              const files = imagesOf(event.dataTransfer && event.dataTransfer.files)
              if (!files.length || !writable) return false
              event.preventDefault()
              const at = view.posAtCoords({ x: event.clientX, y: event.clientY })
              if (at != null) view.dispatch({ selection: { anchor: at } })
              files.forEach((file) => upload(view, file))
              return true
            }
          })
        ]
      })
    })
    views.push({ view, readOnly })
    mount.hidden = false
  }
  root.hidden = false
  window.coedit = { doc, provider, views }
}

const root = document.getElementById('coedit')
if (root) start(root)
