/* The contract's table of contents (pwa/templates/applications/_contract_text.html): on a phone it is a sticky
   disclosure over the text, so a tap on a clause closes it and the clause is not hidden under the open list. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("[data-toc] a") : null;
    if (link) {
      link.closest("details").open = false;
    }
  });
})();
