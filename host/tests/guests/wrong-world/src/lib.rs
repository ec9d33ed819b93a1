//! Exports `describe` with the wrong type and nothing else of the reclaimer world.

wit_bindgen::generate!({
    inline: "
        package hostile:wrong;
        world wrong {
            export describe: func() -> string;
        }
    ",
});

struct Wrong;

impl Guest for Wrong {
    fn describe() -> String {
        "I am not a reclaimer".to_string()
    }
}

export!(Wrong);
