// Copy text: the Clipboard API needs a secure context (https or localhost), and a console
// served over plain http on a LAN address has none, so fall back to a selected textarea.
export async function copyText(text: string): Promise<boolean> {
  try {
    if (typeof navigator.clipboard !== 'undefined' && window.isSecureContext) {
      await navigator.clipboard.writeText(text)
      return true
    }
  } catch {
    // fall through to the textarea
  }
  const area = document.createElement('textarea')
  area.value = text
  area.setAttribute('readonly', '')
  area.style.position = 'fixed'
  area.style.opacity = '0'
  document.body.appendChild(area)
  area.select()
  let ok = false
  try {
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    ok = document.execCommand('copy')
  } catch {
    ok = false
  }
  area.remove()
  return ok
}
