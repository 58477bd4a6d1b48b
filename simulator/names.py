"""Name lists for display names (never features; gender-typed first names only for realism)."""

FIRST_F = (
    "Olivia Emma Ava Sophia Isabella Mia Amelia Harper Evelyn Abigail Emily Ella Elizabeth Camila Luna "
    "Sofia Avery Mila Aria Scarlett Penelope Layla Chloe Victoria Madison Eleanor Grace Nora Riley Zoey "
    "Hannah Hazel Lily Ellie Violet Lillian Zoe Stella Aurora Natalie Emilia Everly Leah Aubrey Willow "
    "Addison Lucy Audrey Bella Nova Brooklyn Paisley Savannah Claire Skylar Isla Genesis Naomi Elena Caroline "
    "Priya Ananya Mei Yuki Fatima Aisha Ingrid Freya Chiara Lucia Ines Marta Agnieszka Ewa Sanne Noor"
).split()
FIRST_M = (
    "Liam Noah Oliver Elijah James William Benjamin Lucas Henry Theodore Jack Levi Alexander Jackson Mateo "
    "Daniel Michael Mason Sebastian Ethan Logan Owen Samuel Jacob Asher Aiden John Joseph Wyatt David Leo "
    "Luke Julian Hudson Grayson Matthew Ezra Gabriel Carter Isaac Jayden Luca Anthony Dylan Lincoln Thomas "
    "Maverick Elias Josiah Charles Caleb Christopher Ezekiel Miles Jaxon Isaiah Andrew Joshua Nathan Nolan "
    "Arjun Rohan Wei Hiroshi Omar Yusuf Lars Erik Marco Pablo Diego Tomasz Piotr Jonas Daan Kwame"
).split()
FIRST_X = "Alex Sam Jordan Taylor Morgan Casey Jamie Riley Quinn Avery Rowan Sasha Robin Kai Noa Eden".split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall "
    "Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins "
    "Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed "
    "Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz "
    "Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Schmidt Mueller Rossi Dubois "
    "Kowalski Novak Jansen Larsen Tanaka Sato Chen Wang Singh Kumar Okafor Mensah Silva Costa Ferreira"
).split()
