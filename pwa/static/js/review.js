/* A risk officer's decision form: the counter-offer's down payment and term are shown only while 调整方案
   (counter-offer) is chosen. Without JavaScript they stay visible; the server ignores them for the other
   decisions. */
(function () {
  "use strict";
  function setUp(form) {
    var fields = form.querySelector("[data-counter-offer]");
    if (!fields) return;
    function update() {
      var chosen = form.querySelector("input[name=decision]:checked");
      fields.hidden = !(chosen && chosen.value === "counter_offer");
    }
    form.addEventListener("change", function (event) {
      if (event.target && event.target.name === "decision") update();
    });
    update();
  }
  document.querySelectorAll("form[data-decision-form]").forEach(setUp);
})();
