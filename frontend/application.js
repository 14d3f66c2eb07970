// Entry point bundled by esbuild into static/build/application.js.
import "@hotwired/turbo"
import "./versions.js"
import { Application } from "@hotwired/stimulus"

import RecipientsController from "./controllers/recipients_controller.js"

const application = Application.start()
application.register("recipients", RecipientsController)

window.Stimulus = application
