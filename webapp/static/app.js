// sigverify: previews of the images chosen in a file input (data-preview names the preview box).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[type=file][data-preview]").forEach(function (input) {
    input.addEventListener("change", function () {
      var box = document.getElementById(input.dataset.preview);
      if (!box) { return; }
      box.replaceChildren();
      Array.prototype.forEach.call(input.files, function (file) {
        var figure = document.createElement("figure");
        var image = document.createElement("img");
        image.src = URL.createObjectURL(file);
        image.alt = file.name;
        image.onload = function () { URL.revokeObjectURL(image.src); };
        var caption = document.createElement("figcaption");
        caption.textContent = file.name;
        figure.append(image, caption);
        box.append(figure);
      });
    });
  });
});
