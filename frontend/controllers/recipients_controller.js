import { Controller } from "@hotwired/stimulus"

// Adds and removes recipient rows of a Django formset.
//
// Django reads rows by index, 0 to TOTAL_FORMS - 1, with saved rows first.
// Saved rows are never taken out of the DOM: removing one checks its DELETE
// box and hides it, so their indexes never change. A new row disappears when
// removed, and every new row after it moves down one index, so that the
// indexes stay contiguous after any sequence of adds and removes.
export default class extends Controller {
  static targets = ["rows", "row", "template", "number"]
  static values = { prefix: String }

  connect() {
    this.renumber()
  }

  add(event) {
    event.preventDefault()
    const index = this.rowTargets.length
    const html = this.templateTarget.innerHTML.replace(/__prefix__/g, String(index))
    this.rowsTarget.insertAdjacentHTML("beforeend", html)
    this.renumber()
    const row = this.rowTargets[this.rowTargets.length - 1]
    row.querySelector("input:not([type=hidden])")?.focus()
  }

  remove(event) {
    event.preventDefault()
    const row = event.target.closest("[data-recipients-target~='row']")
    if (!row) return

    if (row.dataset.newRecord === "true") {
      row.remove()
    } else {
      const deleteBox = row.querySelector(`input[name$='-DELETE']`)
      if (deleteBox) deleteBox.checked = true
      row.classList.add("hidden")
    }
    this.renumber()
  }

  renumber() {
    const pattern = new RegExp(`^(id_)?${this.escapedPrefix}-\\d+-`)
    let visibleNumber = 0
    this.rowTargets.forEach((row, index) => {
      const replacement = (_match, idPrefix) => `${idPrefix || ""}${this.prefixValue}-${index}-`
      row.querySelectorAll("[name], [id], label[for]").forEach((element) => {
        for (const attribute of ["name", "id", "for"]) {
          const value = element.getAttribute(attribute)
          if (value) element.setAttribute(attribute, value.replace(pattern, replacement))
        }
      })
      // Visible rows are numbered 1, 2, 3 … skipping rows marked for
      // deletion, as the server does in its "row N" messages.
      const number = row.querySelector("[data-recipients-target~='number']")
      if (number && !row.classList.contains("hidden")) {
        visibleNumber += 1
        number.textContent = String(visibleNumber)
      }
    })
    this.totalFormsInput.value = String(this.rowTargets.length)
  }

  get totalFormsInput() {
    return this.element.querySelector(`input[name='${this.prefixValue}-TOTAL_FORMS']`)
  }

  get escapedPrefix() {
    return this.prefixValue.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  }
}
