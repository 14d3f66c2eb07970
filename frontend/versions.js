// Keeps what the page shows from going backwards.
//
// Rows and headers rendered by the server carry data-version: a recipient
// row's version goes up with every change to it, and a header's version is
// the position in commit order of the database read that it shows. Live
// updates can arrive late or out of order (two servers, a reconnect, a
// refresh that was already under way), so an element is replaced or morphed
// only by content of the same or a higher version. Content without a
// version always applies.

function versionOf(element) {
  const value = element?.dataset?.version
  return value && /^\d+$/.test(value) ? BigInt(value) : null
}

// True when `incoming` is older than the element the page shows.
function isOlder(incoming, current) {
  const incomingVersion = versionOf(incoming)
  const currentVersion = versionOf(current)
  return incomingVersion !== null && currentVersion !== null && incomingVersion < currentVersion
}

// Turbo Streams: skip a replacement whose content is older than its target.
// Turbo renders a stream a frame after this event, and another stream for
// the same target may render in between, so the check runs at render time.
document.addEventListener("turbo:before-stream-render", (event) => {
  const stream = event.target
  if (stream.getAttribute("action") !== "replace") return
  const render = event.detail.render
  event.detail.render = (streamElement) => {
    const incoming = streamElement.templateElement.content.firstElementChild
    const target = document.getElementById(streamElement.getAttribute("target"))
    if (incoming && target && isOlder(incoming, target)) return
    return render(streamElement)
  }
})

// Morphing page refreshes: keep an element whose version is newer than the
// one in the page just fetched.
document.addEventListener("turbo:before-morph-element", (event) => {
  const { newElement } = event.detail
  if (newElement && isOlder(newElement, event.target)) event.preventDefault()
})
