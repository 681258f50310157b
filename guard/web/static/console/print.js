// A "Print" button for the console's reports: hidden without JavaScript (the browser's own
// Print command does the same; the stylesheet's print rules leave the navigation out).
for (const button of document.querySelectorAll('.print-button')) {
  button.hidden = false;
  button.addEventListener('click', () => window.print());
}
