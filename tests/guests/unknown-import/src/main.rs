//! A component importing an interface no pgcache host offers (`acme:extra/thing`): hosts must
//! refuse it before compiling, naming the import.

mod bindings {
    wit_bindgen::generate!({
        inline: "package acme:extra; interface thing { ping: func(); } world unknown { import thing; }",
    });
}

fn main() {
    bindings::acme::extra::thing::ping();
}
