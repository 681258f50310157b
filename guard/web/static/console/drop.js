// The verify page's drop zone: a file dropped on it goes into the form's own file input, and
// the form is submitted as if it had been chosen there. Keyboard and screen-reader users use
// the input itself (it stays visible and labelled); without JavaScript the form works as is.

const zone = document.getElementById('drop-zone');
const input = document.getElementById('image');
const form = document.getElementById('verify-form');

if (zone && input && form) {
  const over = (on) => (event) => {
    event.preventDefault();
    zone.classList.toggle('over', on);
  };
  zone.addEventListener('dragenter', over(true));
  zone.addEventListener('dragover', over(true));
  zone.addEventListener('dragleave', over(false));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || files.length === 0) return;
    const one = new DataTransfer();
    one.items.add(files[0]);
    input.files = one.files;
    form.requestSubmit();
  });
}
